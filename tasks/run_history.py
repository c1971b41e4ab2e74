"""The runs of an analysis, one ``RunRecord`` each: what a run remembers of the ones before it and what
the history table lists.

Records come from three places, merged by flow run id (``merge_records``): the ``<name>-history``
artifacts on the Prefect server (``tasks/prefect/history.py``; the one source a worker on another host
shares), ``history.jsonl`` beside the run folders (one line appended per run; it outlives the folders
``outputs.retention`` prunes), and, for runs neither knows, the run folders' transcripts.
Runs are ordered by the time they are for (``as_of``), not by when they ran, so a backfill's week 3
follows its week 2 whatever order the workers took them in.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tasks.retention import RUN_FOLDER
from tasks.text_safety import printable
from tasks.transcript import TRANSCRIPT_FILE, InvalidTranscript, Transcript

log = logging.getLogger(__name__)

HISTORY_FILE = "history.jsonl"
SUMMARY_CHARS = 500  # the report's opening, as the next run is told it and the history table shows it
# The table's own columns; every other column of a row is a result (schema.RESERVED_RESULT_NAMES keeps them apart).
COLUMNS = ("time", "window", "status", "cost_usd", "alerts", "summary", "flow_run")
# The status of a run whose transcript records no end: killed, its host lost, or still running elsewhere.
# Its transcript says "running"; the history cannot tell a crash from a run still going, so it says neither.
UNFINISHED = "unfinished"


@dataclass
class RunRecord:
    """One run, as the history table lists it and the next run is told of it."""

    flow_run_id: str
    time: str  # ISO: the time the run is for (its as_of), else when it started
    status: str  # the transcript's (completed, max_iterations, failed, results_invalid, ...), or UNFINISHED
    window: str | None = None  # "2026-11-23..2026-11-29"
    cost_usd: float | None = None
    results: dict[str, Any] | None = None
    alerts: list[str] = field(default_factory=list)  # names of the alerts that fired
    summary: str = ""  # the opening of the report, clipped to SUMMARY_CHARS; untrusted (the model wrote it)

    @property
    def ended(self) -> bool:
        return self.status != UNFINISHED

    @property
    def completed(self) -> bool:
        """A run whose analysis finished: worth remembering (a stop at the iteration cap still reported)."""
        return self.status in ("completed", "max_iterations", "budget_exceeded")

    def to_row(self, result_names: Iterable[str] | None = None) -> dict[str, Any]:
        """The history table's row: its own columns, then one column per result (each of ``result_names``,
        None where this run has no value, when they are given)."""
        results = self.results or {}
        if result_names is not None:
            results = {k: results.get(k) for k in result_names}
        return {"time": self.time, "window": self.window or "", "status": self.status, "cost_usd": self.cost_usd,
                **results, "alerts": ", ".join(self.alerts), "summary": self.summary, "flow_run": self.flow_run_id}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord | None:
        """A row of the table back into a record; None for a row that is not one (a table edited by hand)."""
        if not isinstance(row, Mapping) or not isinstance(row.get("time"), str) or not row.get("status"):
            return None
        results = {k: v for k, v in row.items() if k not in COLUMNS and v is not None}
        alerts = row.get("alerts") or ""
        cost = row.get("cost_usd")
        return cls(flow_run_id=str(row.get("flow_run") or ""), time=row["time"], status=_status(row["status"]),
                   window=str(row.get("window") or "") or None,
                   cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
                   results=results or None,
                   alerts=[a.strip() for a in str(alerts).split(",") if a.strip()],
                   summary=str(row.get("summary") or ""))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """A line of history.jsonl; TypeError for one that is not a record (a file edited by hand)."""
        known = {k: data[k] for k in ("flow_run_id", "time", "status", "window", "cost_usd", "results", "alerts",
                                      "summary") if k in data}
        record = cls(**known)
        if not (isinstance(record.flow_run_id, str) and isinstance(record.time, str)
                and isinstance(record.results, (dict, type(None))) and isinstance(record.alerts, list)
                and isinstance(record.cost_usd, (int, float, type(None))) and isinstance(record.summary, str)):
            raise TypeError("not a run record")
        record.status = _status(record.status)
        return record


def _status(status: object) -> str:
    return UNFINISHED if status == "running" else str(status)


def table_rows(records: Iterable[RunRecord], declared: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The history table: every row with the same columns, the ``declared`` results first. The Prefect UI
    takes a table's columns from its first row alone: a newest run without results would hide them all."""
    records = list(records)
    names = dict.fromkeys([*declared, *(k for r in records for k in (r.results or {}))])
    return [r.to_row(names) for r in records]


def record_of(transcript: Transcript) -> RunRecord:
    """This run's record, from its transcript (after the loop; before its reports are written)."""
    run_time = transcript.run_time or {}
    window = run_time.get("window") or None
    return RunRecord(
        flow_run_id=transcript.flow_run_id or transcript.run_key or "",
        time=utc_iso(run_time.get("as_of") or transcript.started_at),
        status=_status(transcript.status),
        window=f"{window['start'][:10]}..{window['last_day'][:10]}" if window else None,
        cost_usd=transcript.cost_usd,
        results=dict(transcript.results) if transcript.results else None,
        alerts=[str(a.get("name")) for a in transcript.alerts],
        summary=report_summary(transcript.final_report),
    )


def utc_iso(text: str) -> str:
    """An ISO time in UTC, so that times written in different zones sort as text."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def report_summary(report: str | None) -> str:
    """The report's opening paragraphs, one line, clipped: what the next run is told the last one said."""
    if not report:
        return ""
    text = " ".join(printable(report).split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def merge_records(*sources: Iterable[RunRecord]) -> list[RunRecord]:
    """One record per run, newest ``time`` first: the first source that has it wins, except that a record
    of the run's end always beats an unfinished one (another host may have listed the run while it went on,
    and published that after the run's own row)."""
    seen: dict[str, RunRecord] = {}
    for source in sources:
        for record in source:
            key = record.flow_run_id or f"{record.time}/{record.status}"
            if key not in seen or (record.ended and not seen[key].ended):
                seen[key] = record
    return sorted(seen.values(), key=lambda r: r.time, reverse=True)


def previous_completed(records: Iterable[RunRecord], before: str, exclude: str = "", runs: int = 1
                       ) -> list[RunRecord]:
    """The last ``runs`` completed runs for a time before ``before`` (ISO), newest first; never ``exclude``
    (this run's own flow run id, whose record a retry finds already written)."""
    earlier = [r for r in records if r.completed and r.time < before and (not exclude or r.flow_run_id != exclude)]
    return sorted(earlier, key=lambda r: r.time, reverse=True)[:runs]


def append_record(analysis_dir: Path, record: RunRecord) -> None:
    """One line per run in ``history.jsonl``; a retry of the same flow run appends again (the last line wins)."""
    analysis_dir.mkdir(parents=True, exist_ok=True)
    with (analysis_dir / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")


def read_local_records(analysis_dir: Path, limit: int) -> list[RunRecord]:
    """The runs ``history.jsonl`` records (the last line of a flow run wins), then those of run folders it
    does not name (runs older than the file, or killed before they could append), newest first."""
    by_id: dict[str, RunRecord] = {}
    path = analysis_dir / HISTORY_FILE
    if path.is_file():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            try:
                record = RunRecord.from_dict(json.loads(line))
            except (ValueError, TypeError) as exc:  # a line cut by a full disk: the others still count
                log.warning("Skipping line %d of %s: %s", number, path, exc)
                continue
            by_id[record.flow_run_id or f"{record.time}/{record.status}"] = record
    records = merge_records(by_id.values())
    known = {r.flow_run_id[:8] for r in records if r.flow_run_id}
    unknown = sorted((d for d in _run_folders(analysis_dir) if d.name.rsplit("-", 1)[-1] not in known),
                     key=lambda d: d.name, reverse=True)
    for folder in unknown[:limit]:
        try:
            records.append(record_of(Transcript.load(folder / TRANSCRIPT_FILE)))
        except (OSError, InvalidTranscript):  # a folder without a readable transcript is no run to list
            continue
    return merge_records(records)[:limit]


def _run_folders(analysis_dir: Path) -> list[Path]:
    if not analysis_dir.is_dir():
        return []
    return [d for d in analysis_dir.iterdir() if RUN_FOLDER.match(d.name) and d.is_dir() and not d.is_symlink()]
