"""The loop tells its provider the next request as soon as an iteration knows it, and only when it will ask it."""

from __future__ import annotations

import copy
from typing import Any

from tasks.models.base import ModelProvider, ModelRequest, ModelTurn
from tests.agent.conftest import make_loop


class Recording(ModelProvider):
    """The loop's real provider (the SDK against the stand-in), with what it was told and asked, in order."""

    def __init__(self, wrapped: ModelProvider):
        self.wrapped, self.name, self.model, self.max_tokens = wrapped, wrapped.name, wrapped.model, wrapped.max_tokens
        self.calls: list[tuple[str, Any]] = []

    def ask_ahead(self, request: ModelRequest) -> None:
        self.calls.append(("ahead", copy.deepcopy(request.messages)))

    def next_turn(self, request: ModelRequest) -> ModelTurn:
        self.calls.append(("turn", copy.deepcopy(request.messages)))
        return self.wrapped.next_turn(request)


def recording_loop(api: Any, sandbox: Any, run_dir: Any, **limits: Any):
    loop = make_loop(api, sandbox, run_dir, **limits)
    loop.provider = Recording(loop.provider)
    return loop, loop.provider


def test_each_iteration_that_goes_on_tells_the_next_request_before_it_ends(anthropic_api, sandbox, tmp_path) -> None:
    anthropic_api.enqueue_tool_use(code="print(1)")
    anthropic_api.enqueue_tool_use(code="print(2)")
    anthropic_api.enqueue_text("Two prints.")
    loop, recording = recording_loop(anthropic_api, sandbox, tmp_path)

    loop.run()

    assert loop.transcript.status == "completed"
    assert [kind for kind, _ in recording.calls] == ["turn", "ahead", "turn", "ahead", "turn"]
    # What was told ahead is exactly the conversation the next turn sent, tool results included.
    assert recording.calls[1][1] == recording.calls[2][1] and recording.calls[3][1] == recording.calls[4][1]
    assert recording.calls[2][1][-1]["content"][0]["type"] == "tool_result"


def test_nothing_is_told_ahead_when_the_next_request_is_the_final_report_or_over_budget(anthropic_api, sandbox,
                                                                                          tmp_path) -> None:
    for i in range(2):
        anthropic_api.enqueue_tool_use(code=f"print({i})")
    anthropic_api.enqueue_text("The report.")
    loop, recording = recording_loop(anthropic_api, sandbox, tmp_path / "limit", max_iterations=2)
    loop.run()
    assert loop.transcript.status == "max_iterations"
    # iteration 2 is the last: the request after it is the final report, a conversation it does not know yet
    assert [kind for kind, _ in recording.calls] == ["turn", "ahead", "turn", "turn"]

    anthropic_api.reset_cache()
    anthropic_api.enqueue_tool_use(code="print(0)")
    loop, recording = recording_loop(anthropic_api, sandbox, tmp_path / "budget", max_total_tokens=1)
    loop.run()
    assert loop.transcript.status == "budget_exceeded"
    assert [kind for kind, _ in recording.calls] == ["turn"]
