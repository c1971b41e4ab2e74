"""Replay the model's turns from an earlier run's transcript; the code still runs, for real.

Serves the offline demo and the tests, and re-runs a pinned analysis on new data without paying
for the model. Usage and cost are zero: no model is called.
"""

from __future__ import annotations

from pathlib import Path

from tasks.errors import ModelError
from tasks.models.base import ModelProvider, ModelRequest, ModelTurn, Usage
from tasks.transcript import Transcript


class ReplayProvider(ModelProvider):
    name = "replay"

    def __init__(self, transcript_path: Path):
        self.path = Path(transcript_path)
        try:
            self.source = Transcript.load(self.path)
        except FileNotFoundError:
            raise ModelError(f"replay transcript not found: {self.path}") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"replay transcript {self.path} is not a transcript.json written by a run: {exc}") \
                from None
        if not self.source.turns:
            raise ModelError(f"replay transcript {self.path} has no model turns to replay")
        self.model = self.source.model

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        # The next turn is the one after those already in the conversation, so a resumed run
        # replays from where it stopped.
        index = sum(1 for m in request.messages if m.get("role") == "assistant")
        turn = self.source.turns[index] if index < len(self.source.turns) else None
        if turn is None:
            raise ModelError(
                f"replay transcript {self.path} has no more turns ({len(self.source.turns)} replayed); "
                "the new run needs more turns than the recorded one"
            )
        return ModelTurn(content=turn.content, stop_reason=turn.stop_reason, model=turn.model,
                         usage=Usage(), cost_usd=0.0)
