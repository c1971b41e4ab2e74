"""The runs before this one, from the Prefect server and the run folders, and this run added to them.

The server's ``<name>-history`` table artifact is what a worker on another host shares; ``history.jsonl``
beside the run folders is what a run can read without a server. Both are read and merged
(``tasks/run_history.py``). Runs of a backfill may finish at the same moment and each publish the table
from what it read: the newest ``_VERSIONS_READ`` versions are merged, so a row one of them missed is
back in the next. Reading them is one request, made once per run, before its loop; the run publishes the
table and the trend chart from what it read then, without asking again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from tasks.config import LoadedConfig
from tasks.prefect.artifacts import _logger, _SYNC, artifact_key, publish_later
from tasks.prefect.publisher import ArtifactPublisher
from tasks.image_safety import MiB
from tasks.reports.images import ChartEmbedder
from tasks.reports.markdown import REPORT_BUDGET
from tasks.reports.trends import TRENDS_CHART, draw_trends
from tasks.run_history import RunRecord, append_record, merge_records, read_local_records, table_rows

_VERSIONS_READ = 5
TABLE_BUDGET = REPORT_BUDGET  # a table artifact is one request too: under Prefect Cloud's 5 MiB cap


def known_runs(loaded: LoadedConfig) -> list[RunRecord]:
    """Every run of this analysis the server's history or the run folders know, newest first."""
    limit = loaded.config.history.runs
    local = read_local_records(loaded.outputs_dir / loaded.config.name, limit)
    return merge_records(read_server_records(loaded.config.name), local)


def read_server_records(name: str) -> list[RunRecord]:
    """The rows of the newest versions of ``<name>-history``; none when the server cannot be reached."""
    try:
        return fetch_server_records(name)
    except Exception as exc:  # noqa: BLE001 - the run folders still hold this host's runs
        _logger().warning("Could not read the history of %s from the Prefect server (%s: %s); using the run "
                          "folders only", name, type(exc).__name__, exc)
        return []


def fetch_server_records(name: str) -> list[RunRecord]:
    """The rows of the newest versions of ``<name>-history``, in one request; raises when the server
    cannot be reached."""
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[artifact_key(name, "history")])),
            sort=ArtifactSort.CREATED_DESC, limit=_VERSIONS_READ)
    return merge_records(*(_rows(a.data) for a in artifacts))


def _rows(data: Any) -> list[RunRecord]:
    if isinstance(data, str):  # a table artifact's data is stored as JSON text
        try:
            data = json.loads(data)
        except ValueError:
            return []
    rows = data if isinstance(data, list) else []
    return [r for r in (RunRecord.from_row(row) for row in rows) if r is not None]


def record_run(loaded: LoadedConfig, record: RunRecord, earlier: list[RunRecord],
               publisher: ArtifactPublisher | None = None) -> list[RunRecord]:
    """Add this run to ``history.jsonl`` and publish ``<name>-history`` (from ``publisher``'s thread, when
    given); returns the history it published."""
    name = loaded.config.name
    history = merge_records([record], earlier)[: loaded.config.history.runs]
    try:
        append_record(loaded.outputs_dir / name, record)
    except OSError as exc:  # the server's table still has it
        _logger().warning("Could not add the run to %s's history.jsonl: %s", name, exc)
    publish_history(name, history, loaded.config.results, publisher)
    return history


def publish_history(name: str, history: list[RunRecord], declared: Iterable[str] = (),
                    publisher: ArtifactPublisher | None = None) -> UUID | None:
    def prepare() -> Callable[[], UUID]:
        rows = fit_rows(table_rows(history, declared), TABLE_BUDGET)
        if len(rows) < len(history):
            _logger().warning("The history table of %s holds the last %d of %d runs: more would pass %d MiB",
                              name, len(rows), len(history), TABLE_BUDGET // MiB)
        return lambda: create_table_artifact(table=rows, key=artifact_key(name, "history"),
                                             description=f"{name}: the last {len(rows)} run(s), newest first",
                                             **_SYNC)

    return publish_later("history", prepare, publisher)


def fit_rows(rows: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The newest rows whose JSON fits ``budget`` bytes (at least one): long results from the model times
    history.runs could pass what a Prefect Cloud request takes."""
    used = 2
    for count, row in enumerate(rows):
        used += len(json.dumps(row, default=str).encode()) + 2
        if used > budget and count:
            return rows[:count]
    return rows


def chart_trends(loaded: LoadedConfig, record: RunRecord, earlier: list[RunRecord], run_dir: Path,
                 publisher: ArtifactPublisher | None = None) -> UUID | None:
    """Draw the trend chart of this run and the ones before it into the run folder (for its reports), and
    publish it as ``<name>-trends`` (from ``publisher``'s thread, when given); nothing when no numeric
    result has two values yet."""
    history = merge_records([record], earlier)[: loaded.config.history.runs]
    if draw_trends(history, loaded.config.results, run_dir) is None:
        return None
    return publish_trends(loaded.config.name, run_dir, len(history), publisher)


def publish_trends(name: str, run_dir: Path, runs: int, publisher: ArtifactPublisher | None = None) -> UUID | None:
    def prepare() -> Callable[[], UUID]:
        uri = ChartEmbedder(run_dir, REPORT_BUDGET).uri(TRENDS_CHART)
        chart = f"![Trends of {name}'s numeric results]({uri})" if uri else f"_The chart is {run_dir / TRENDS_CHART}._"
        markdown = (f"# {name}: trends\n\nEach numeric result over the last {runs} run(s) of the history, oldest "
                    f"to newest; the newest run's value in orange.\n\n{chart}\n")
        return lambda: create_markdown_artifact(markdown=markdown, key=artifact_key(name, "trends"),
                                                description=f"{name}: numeric results over the last {runs} run(s)",
                                                **_SYNC)

    return publish_later("trends", prepare, publisher)
