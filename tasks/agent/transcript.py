"""The transcript: everything a run did, written after every iteration.

It is the record a failed run leaves behind, what the reports are rendered from, and what the
``replay`` provider reads back. Charts live as PNG files beside it (``charts/``), referenced by
relative path, so the JSON stays small and readable.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tasks.models.base import ModelTurn, Usage

TRANSCRIPT_VERSION = 1
TRANSCRIPT_FILE = "transcript.json"


_UMASK = os.umask(0)
os.umask(_UMASK)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class CellRecord:
    """One ``run_python_code`` call and what the sandbox returned."""

    tool_use_id: str
    code: str
    stdout: str = ""
    stderr: str = ""
    error: dict[str, str] | None = None  # name, message, traceback
    timed_out: bool = False
    state_reset: bool = False
    charts: list[str] = field(default_factory=list)  # paths relative to the run folder
    duration_s: float = 0.0
    warnings: list[str] = field(default_factory=list)  # the sandbox's own notes (restarts, isolation off)

    @property
    def status(self) -> str:
        return "timeout" if self.timed_out else ("error" if self.error else "ok")


@dataclass
class IterationRecord:
    number: int
    turn: ModelTurn
    cells: list[CellRecord] = field(default_factory=list)
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "turn": self.turn.to_dict(), "cells": [asdict(c) for c in self.cells],
                "started_at": self.started_at, "finished_at": self.finished_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IterationRecord:
        return cls(number=data["number"], turn=ModelTurn.from_dict(data["turn"]),
                   cells=[CellRecord(**c) for c in data.get("cells", [])],
                   started_at=data.get("started_at", ""), finished_at=data.get("finished_at"))


@dataclass
class Transcript:
    analysis: str
    model: str
    provider: str
    system: str
    prompt: str
    tools: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # the conversation, as sent to the model
    iterations: list[IterationRecord] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)  # validation summaries
    # What the results depend on besides the conversation (tasks/agent/fingerprint.py): "sandbox"
    # settings and "datasets" content hashes by name; a resume with other values is refused.
    fingerprint: dict[str, Any] = field(default_factory=dict)
    final_report: str | None = None
    # running | completed | max_iterations | budget_exceeded | refused | failed
    status: str = "running"
    stop_detail: str = ""
    flow_run_id: str | None = None
    # The id shared by a run and every retry or resume of it (its first flow run's id): the model's
    # turns are cached under it, so a retried or resumed run reuses them and a new run asks afresh.
    run_key: str = ""
    resumed_from: list[str] = field(default_factory=list)  # run folders this run continued, oldest first
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None
    version: int = TRANSCRIPT_VERSION

    @property
    def turns(self) -> list[ModelTurn]:
        return [i.turn for i in self.iterations]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for turn in self.turns:
            total = total + turn.usage
        return total

    @property
    def cost_usd(self) -> float | None:
        costs = [t.cost_usd for t in self.turns]
        return None if any(c is None for c in costs) else round(sum(c for c in costs if c is not None), 6)

    @property
    def cells(self) -> list[CellRecord]:
        return [c for i in self.iterations for c in i.cells]

    def finish(self, status: str, detail: str = "") -> None:
        self.status, self.stop_detail, self.finished_at = status, detail, now_iso()

    def fail(self, detail: str) -> None:
        if self.status == "running":
            self.finish("failed", detail)

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "iterations"}
        data["iterations"] = [i.to_dict() for i in self.iterations]
        data["usage"] = self.usage.to_dict()
        data["cost_usd"] = self.cost_usd
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "iterations"}
        return cls(**fields, iterations=[IterationRecord.from_dict(i) for i in data.get("iterations", [])])

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write must not destroy the previous iteration's record."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".transcript-", suffix=".json")
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it 0600; a transcript is as readable as the report
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.to_dict(), handle, indent=1, ensure_ascii=False)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Transcript:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
