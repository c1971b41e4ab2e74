"""Every place a run leaves text behind, gathered so a test can search all of it: the run folder
(every file, recursively), and, read back through the Prefect API, the flow run (parameters, state
messages), its task runs and their states, its artifacts, and the logs and events written since the
run started. ``find`` then lists each place a planted secret (or a fragment of it) shows up."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterTimestamp,
)
from prefect.events.filters import EventFilter, EventOccurredFilter
from prefect.logging.handlers import APILogHandler


def fragments(secret: str) -> list[str]:
    """The secret and the parts of it that would betray it if it were cut, masked or split."""
    tail = secret.rsplit("-", 1)[-1]  # the random part: what makes each planted key unique
    return [secret, secret[:-6], secret[-16:], tail, tail[:12], tail[-12:]]


def find(outputs: dict[str, str], secrets: Iterable[str]) -> list[str]:
    """``place: fragment`` for every fragment of every secret found in every output."""
    return [f"{place}: {fragment!r}" for place, text in outputs.items() for secret in secrets
            for fragment in fragments(secret) if fragment in text]


def run_folder(folder: Path) -> dict[str, str]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {f"file {p.relative_to(folder)}": p.read_bytes().decode("utf-8", "replace") for p in files}


def prefect_records(flow_run_id: str, since: datetime, *, wait_for_event: str | None = None) -> dict[str, str]:
    """What Prefect holds about the run, as JSON text. ``wait_for_event``: an event name of this flow
    run to wait for (events are written by the server in the background) before reading events."""
    APILogHandler().flush()  # the run's last log lines are sent in the background
    found: dict[str, str] = {}
    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        found["flow run"] = run.model_dump_json()
        for i, state in enumerate(client.read_flow_run_states(flow_run_id)):
            found[f"flow run state {i} {state.type.value}"] = state.model_dump_json()
        for task_run in client.read_task_runs(flow_run_filter=runs):
            found[f"task run {task_run.name}"] = task_run.model_dump_json()
            for i, state in enumerate(client.read_task_run_states(task_run.id)):
                found[f"task run {task_run.name} state {i}"] = state.model_dump_json()
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        for artifact in artifacts:
            found[f"artifact {artifact.key or artifact.type} {artifact.id}"] = artifact.model_dump_json()
        logs: list = []
        while True:  # the API returns at most `limit` per call
            page = client.read_logs(LogFilter(timestamp=LogFilterTimestamp(after_=since)), limit=200,
                                    offset=len(logs))
            logs += page
            if len(page) < 200:
                break
        for log in logs:
            found[f"log {log.id} ({log.name})"] = log.model_dump_json()
        found.update(_events(client, flow_run_id, since, wait_for_event))
    return found


def _events(client, flow_run_id: str, since: datetime, wait_for: str | None) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while True:
        page = client.read_events(EventFilter(occurred=EventOccurredFilter(since=since)), limit=50)
        events = list(page.events)
        while page.next_page:
            page = client.read_events_page(page.next_page)
            events += page.events
        seen = any(e.event == wait_for and e.resource.id == f"prefect.flow-run.{flow_run_id}" for e in events)
        if wait_for is None or seen or time.monotonic() > deadline:
            return {f"event {e.event} {e.id}": e.model_dump_json() for e in events}
        time.sleep(0.5)
