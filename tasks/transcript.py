"""The transcript: everything a run did, written after every iteration.

It is the record a failed run leaves behind, what the reports are rendered from, and what the
``replay`` provider reads back. Charts live as PNG files beside it (``charts/``), referenced by
relative path, so the JSON stays small and readable.

A transcript read back may come from anywhere (``--replay`` takes any file), so its stored shape is
declared here as pydantic dataclasses: loading is validation, and a file that does not fit fails
with one line naming the place inside it (``iterations[3].cells[0].code: expected a string``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

from tasks.errors import AnalystError
from tasks.models.base import ModelTurn, Usage
from tasks.models.messages import Message, ToolDefinition

TRANSCRIPT_VERSION = 1
TRANSCRIPT_FILE = "transcript.json"
# Larger than any run writes (each code output is capped by sandbox.max_output_chars): a bigger file
# is not a transcript, and reading it would cost memory and fill the Prefect database with its turns.
MAX_TRANSCRIPT_BYTES = 20 * 1024**2
# Keys written for readers (usage and cost totals) and keys of other versions are not read back.
_STORED = ConfigDict(extra="ignore")


class InvalidTranscript(AnalystError, ValueError):
    """A file that is not a transcript a run wrote; the message is one line, without the file's name
    (``file`` has it), since callers name the file in their own words."""

    def __init__(self, file: Path, message: str):
        self.file = file
        super().__init__(message)


_UMASK = os.umask(0)
os.umask(_UMASK)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(config=_STORED)
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


@dataclass(config=_STORED)
class IterationRecord:
    number: int
    turn: ModelTurn
    cells: list[CellRecord] = field(default_factory=list)
    started_at: str = field(default_factory=now_iso)
    finished_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return _ITERATION.dump_python(self, mode="json")

    @classmethod
    def from_dict(cls, data: Any) -> IterationRecord:
        return _ITERATION.validate_python(data)


@dataclass(config=_STORED)
class Transcript:
    analysis: str
    model: str
    provider: str
    system: str
    prompt: str
    tools: list[ToolDefinition] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)  # the conversation, as sent to the model
    iterations: list[IterationRecord] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)  # validation summaries
    # What the results depend on besides the conversation (tasks/agent/fingerprint.py): "sandbox"
    # settings and "datasets" content hashes by name; a resume with other values is refused.
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # What each dataset was, by name (fingerprint.data_fingerprint): its source, rows, columns, content
    # hash and window, and the kept file it was read from or saved to (outputs.keep_data).
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    final_report: str | None = None
    # The values submitted through submit_results, valid by the config's `results` (tasks/results.py);
    # None when none are declared or none valid came.
    results: dict[str, Any] | None = None
    # The previous runs Claude was told of (tasks/run_history.RunRecord.to_dict), newest first: [] on a
    # first run, None when memory is off. A replay or resume keeps the recorded ones, never fetches anew.
    memory: list[dict[str, Any]] | None = None
    # The alerts that fired: {"name", "message", "values"} each (tasks/alerts.py).
    alerts: list[dict[str, Any]] = field(default_factory=list)
    # The alerts that could not be evaluated (a value missing, a type mismatch): {"name", "reason"} each.
    alerts_not_evaluated: list[dict[str, str]] = field(default_factory=list)
    # running | completed | max_iterations | budget_exceeded | refused | results_invalid | failed
    status: str = "running"
    stop_detail: str = ""
    flow_run_id: str | None = None
    # The id shared by a run and every retry or resume of it (its first flow run's id): the model's
    # turns are cached under it, so a retried or resumed run reuses them and a new run asks afresh.
    run_key: str = ""
    resumed_from: list[str] = field(default_factory=list)  # run folders this run continued, oldest first
    # The run's time and the window of data it covers: {"as_of": ISO, "window": {"start", "end", "last_day"} | None}
    run_time: dict[str, Any] | None = None
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
        data = _TRANSCRIPT.dump_python(self, mode="json")
        data["usage"] = self.usage.to_dict()
        data["cost_usd"] = self.cost_usd
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Transcript:
        return _TRANSCRIPT.validate_python(data)

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write must not destroy the previous iteration's record."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".transcript-", suffix=".json")
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes it 0600; a transcript is as readable as the report
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_dict(), handle, indent=1, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # a full disk must not also keep a partial copy
            raise

    @classmethod
    def load(cls, path: Path) -> Transcript:
        """Read and validate; ``InvalidTranscript`` (one line) if the file is not a transcript, too
        large (``MAX_TRANSCRIPT_BYTES``) or nested too deep to parse. ``FileNotFoundError`` as usual."""
        path = Path(path)
        with path.open("rb") as handle:
            raw = handle.read(MAX_TRANSCRIPT_BYTES + 1)
        if len(raw) > MAX_TRANSCRIPT_BYTES:
            raise InvalidTranscript(path, f"larger than {MAX_TRANSCRIPT_BYTES // 1024**2} MiB, more than any run "
                                          "writes: not a transcript")
        try:
            data = json.loads(raw)
        except RecursionError:
            raise InvalidTranscript(path, "nested too deeply to be a transcript") from None
        except UnicodeDecodeError as exc:
            raise InvalidTranscript(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise InvalidTranscript(path, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") \
                from None
        try:
            return cls.from_dict(data)
        except ValidationError as exc:
            raise InvalidTranscript(path, _first_problem(exc)) from None
        except RecursionError:
            raise InvalidTranscript(path, "nested too deeply to be a transcript") from None


_ITERATION = TypeAdapter(IterationRecord)
_TRANSCRIPT = TypeAdapter(Transcript)
_EXPECTED = {"dict_type": "expected a mapping", "list_type": "expected a list", "string_type": "expected a string",
             "int_type": "expected a whole number", "int_parsing": "expected a whole number",
             "float_type": "expected a number", "float_parsing": "expected a number",
             "bool_type": "expected true or false", "bool_parsing": "expected true or false",
             "missing": "missing", "dataclass_type": "expected a mapping", "model_type": "expected a mapping"}


def _first_problem(error: ValidationError) -> str:
    """``iterations[3].cells[0].code: expected a string`` (and how many more problems there are)."""
    problems = error.errors(include_url=False, include_input=False)
    first = problems[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]).lstrip(".")
    what = _EXPECTED.get(first["type"], first["msg"].lower())
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    return f"{where or 'the whole file'}: {what}{more}"
