"""Prefect artifacts for a run: report, validation, iterations, usage and progress.

Keys derive from the analysis name only (``<name>-report``), never from the run, so the Artifacts
page shows one entry per analysis with each run as a version of it. Publishing is a side channel:
a failing artifact call logs a warning and returns None rather than failing the analysis.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from prefect.artifacts import (create_markdown_artifact, create_progress_artifact, create_table_artifact,
                               update_progress_artifact)
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from tasks.prefect.publisher import ArtifactPublisher
from tasks.transcript import IterationRecord, Transcript
from tasks.reports.markdown import dataset_row, render_iteration_markdown, render_report_markdown, status_line
from tasks.results import results_rows, results_value

T = TypeVar("T")
MAX_FAILURE_ROWS = 500  # pandera can report a failure per row; the table is a sample, the logs have the rest
# The sync implementations, always: from sync code inside an async flow Prefect's dispatch would
# otherwise hand back an un-awaited coroutine and the artifact would silently never exist.
_SYNC = {"_sync": True}


def artifact_key(name: str, *parts: object) -> str:
    """A valid artifact key (lowercase letters, digits, dashes) from an analysis name and suffixes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "analysis"
    return "-".join([slug, *(re.sub(r"[^a-z0-9]+", "-", str(p).lower()).strip("-") for p in parts)])


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except MissingContextError:  # outside a flow or task run: no run logger to send to
        return logging.getLogger(__name__)


def _quietly(what: str, publish: Callable[[], T]) -> T | None:
    try:
        return publish()
    except Exception as exc:  # noqa: BLE001 - an artifact is never worth failing the analysis
        _logger().warning("Could not publish the %s artifact: %s: %s", what, type(exc).__name__, exc)
        return None


def publish_later(what: str, prepare: Callable[[], Callable[[], T]], publisher: ArtifactPublisher | None) -> T | None:
    """``prepare()`` builds the artifact now, from the run as it is at this point, and returns the call that
    creates it: made here, or queued on ``publisher`` so that the run goes on without waiting for the server
    (then None is returned; the publisher's ``close`` waits for it)."""
    create = _quietly(what, prepare)
    if create is None:
        return None
    if publisher is None:
        return _quietly(what, create)
    publisher.submit(_quietly, what, create)
    return None


def publish_report(transcript: Transcript, run_dir: Path, publisher: ArtifactPublisher | None = None) -> UUID | None:
    def prepare() -> Callable[[], UUID]:
        markdown = render_report_markdown(transcript, Path(run_dir), embed=True)
        description = f"{transcript.analysis}: {status_line(transcript)}"
        return lambda: create_markdown_artifact(markdown=markdown, key=artifact_key(transcript.analysis, "report"),
                                                description=description, **_SYNC)

    return publish_later("report", prepare, publisher)


def publish_results(transcript: Transcript, publisher: ArtifactPublisher | None = None) -> UUID | None:
    """The submitted results as a table (``<name>-results``), one row per value; none when there are none."""
    if transcript.results is None:
        return None

    def prepare() -> Callable[[], UUID]:
        rows = [{"result": r["name"], "value": results_value(r["value"]), "unit": r["unit"] or "",
                 "description": r["description"]} for r in results_rows(transcript.tools, transcript.results or {})]
        return lambda: create_table_artifact(table=rows, key=artifact_key(transcript.analysis, "results"),
                                             description=f"{transcript.analysis}: results", **_SYNC)

    return publish_later("results", prepare, publisher)


def publish_validation(name: str, dataset_reports: list[dict[str, Any]]) -> UUID | None:
    """One row per dataset; a second table lists the failing checks, when there are any.

    Each report is a dict with ``name``, ``rows``, ``columns``, ``valid``, ``on_invalid`` and
    ``failures`` (dicts with ``column``, ``check``, ``failure_case``, ``index``) or ``failure_count``.
    """
    def publish() -> UUID:
        rows = [dataset_row(r) for r in dataset_reports]
        invalid = [r["dataset"] for r in rows if not r["valid"]]
        summary = f"invalid: {', '.join(invalid)}" if invalid else "all valid"
        table_id = create_table_artifact(table=rows, key=artifact_key(name, "validation"),
                                         description=f"Dataset validation for {name}: {summary}", **_SYNC)
        failures = [{"dataset": r.get("name", "?"), **{k: _cell(f.get(k)) for k in
                     ("column", "check", "failure_case", "index")}}
                    for r in dataset_reports if isinstance(r.get("failures"), list) for f in r["failures"]]
        if failures:
            shown = failures[:MAX_FAILURE_ROWS]
            create_table_artifact(
                table=shown, key=artifact_key(name, "validation-failures"),
                description=f"Failed checks for {name}: {len(shown)} of {len(failures)} shown", **_SYNC)
        return table_id

    return _quietly("validation", publish)


def _cell(value: Any) -> Any:
    """JSON-friendly table cell: failure cases can be timestamps, numpy scalars, anything."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def publish_iteration(name: str, iteration: IterationRecord, run_dir: Path) -> UUID | None:
    def publish() -> UUID:
        status = ", ".join(c.status for c in iteration.cells) or "no code"
        return create_markdown_artifact(
            markdown=render_iteration_markdown(iteration, Path(run_dir)),
            key=artifact_key(name, "iteration", iteration.number),
            description=f"{name}, iteration {iteration.number}: {status}", **_SYNC)

    return _quietly(f"iteration {iteration.number}", publish)


def publish_usage(name: str, transcript: Transcript, publisher: ArtifactPublisher | None = None) -> UUID | None:
    def prepare() -> Callable[[], UUID]:
        rows: list[dict[str, Any]] = [
            {"iteration": i.number, "input": i.turn.usage.input_tokens, "output": i.turn.usage.output_tokens,
             "cache_read": i.turn.usage.cache_read_input_tokens,
             "cache_write": i.turn.usage.cache_creation_input_tokens, "cost_usd": i.turn.cost_usd}
            for i in transcript.iterations]
        u = transcript.usage
        rows.append({"iteration": "total", "input": u.input_tokens, "output": u.output_tokens,
                     "cache_read": u.cache_read_input_tokens, "cache_write": u.cache_creation_input_tokens,
                     "cost_usd": transcript.cost_usd})
        cost = f"${transcript.cost_usd:.4f}" if transcript.cost_usd is not None else "cost unknown"
        description = f"Tokens and cost for {name}: {u.total_tokens:,} tokens, {cost}"
        return lambda: create_table_artifact(table=rows, key=artifact_key(name, "usage"), description=description,
                                             **_SYNC)

    return publish_later("usage", prepare, publisher)


def create_progress(name: str, total: int) -> UUID | None:
    """A progress bar at 0%; ``total`` is the iteration limit, named in the description."""
    return _quietly("progress", lambda: create_progress_artifact(
        progress=0.0, key=artifact_key(name, "progress"),
        description=f"{name}: iterations done, out of at most {total}", **_SYNC))


def update_progress(artifact_id: UUID | None, percent: float) -> None:
    if artifact_id is None:  # creating it failed and was already logged
        return
    _quietly("progress", lambda: update_progress_artifact(
        artifact_id=artifact_id, progress=max(0.0, min(100.0, float(percent))), **_SYNC))


class ProgressBar:
    """The run's progress artifact, created and moved from the publisher's thread (in submission
    order) so that the loop never waits on a server round trip for it."""

    def __init__(self, name: str, total: int):
        self.name, self.total = name, total
        self.artifact_id: UUID | None = None

    def create(self) -> None:
        self.artifact_id = create_progress(self.name, self.total)

    def move_to(self, percent: float) -> None:
        update_progress(self.artifact_id, percent)
