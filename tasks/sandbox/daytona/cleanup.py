"""Finding and deleting Daytona sandboxes this tool created, by label: for `analyst sandboxes` and for
the flow hook that runs when a flow run crashes or is cancelled.

The hook cannot rely on the flow's own ``finally``: a crash or a cancellation may kill the process
that held the sandbox object, and Prefect then runs ``on_crashed`` / ``on_cancellation`` hooks
elsewhere. So it looks the run's sandboxes up by the ``flow-run`` label every sandbox carries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.sandbox.daytona.client import CREATED_BY, connect, translate

log = logging.getLogger(__name__)
GONE_STATES = {"destroyed", "destroying"}


@dataclass(frozen=True)
class Found:
    id: str
    state: str
    labels: dict[str, str]
    created_at: datetime | None
    handle: Any  # the SDK's Sandbox, to delete it

    @property
    def analysis(self) -> str:
        return self.labels.get("analysis", "")

    @property
    def flow_run(self) -> str:
        return self.labels.get("flow-run", "")

    def age(self, now: datetime | None = None) -> timedelta | None:
        if self.created_at is None:
            return None
        return (now or datetime.now(timezone.utc)) - self.created_at


def find_sandboxes(client: Any, labels: dict[str, str] | None = None) -> list[Found]:
    """Live sandboxes labelled as ours (and with ``labels``), oldest first."""
    from daytona import DaytonaError, ListSandboxesQuery

    query = ListSandboxesQuery(labels={CREATED_BY[0]: CREATED_BY[1], **(labels or {})})
    try:
        found = [_found(s) for s in client.list(query)]
    except DaytonaError as exc:
        raise translate(exc, "listing sandboxes") from exc
    found = [f for f in found if f.state not in GONE_STATES]
    return sorted(found, key=lambda f: f.created_at or datetime.max.replace(tzinfo=timezone.utc))


def _found(sandbox: Any) -> Found:
    state = getattr(sandbox.state, "value", sandbox.state) or "unknown"
    created = None
    if sandbox.created_at:
        try:
            created = datetime.fromisoformat(sandbox.created_at.replace("Z", "+00:00"))
        except ValueError:
            created = None
    return Found(sandbox.id, str(state), dict(sandbox.labels or {}), created, sandbox)


def delete_found(found: list[Found]) -> tuple[list[str], list[str]]:
    """Delete each; (deleted ids, one line per failure). A sandbox already gone counts as deleted."""
    from daytona import DaytonaError, DaytonaNotFoundError

    deleted, failures = [], []
    for item in found:
        try:
            item.handle.delete(timeout=60)
        except DaytonaNotFoundError:
            pass
        except DaytonaError as exc:
            failures.append(f"{item.id}: {translate(exc, 'deleting it')}")
            continue
        deleted.append(item.id)
    return deleted, failures


def delete_flow_run_sandboxes(flow: Any, flow_run: Any, state: Any) -> None:
    """Prefect flow hook (``on_crashed``, ``on_cancellation``): delete the Daytona sandboxes of this
    flow run. Never raises: a hook's failure must not hide the run's own outcome."""
    logger: Any = log
    try:
        from prefect.logging.loggers import flow_run_logger

        logger = flow_run_logger(flow_run, flow)
        config, config_dir = _sandbox_config(flow_run.parameters or {})
        if config.provider != "daytona":
            return
        found = find_sandboxes(connect(config, config_dir), {"flow-run": str(flow_run.id)})
        deleted, failures = delete_found(found)
        if deleted:
            logger.info("Deleted Daytona sandbox(es) of this run: %s", ", ".join(deleted))
        for failure in failures:
            logger.warning("Could not delete a Daytona sandbox of this run (%s); `analyst sandboxes cleanup` "
                           "deletes leftovers", failure)
    except Exception as exc:  # noqa: BLE001 - see docstring
        logger.warning("Could not look for this run's Daytona sandboxes (%s: %s); they stop when idle and are "
                       "then deleted, or run `analyst sandboxes cleanup`", type(exc).__name__, exc)


def _sandbox_config(parameters: dict[str, Any]) -> tuple[SandboxConfig, Path]:
    from tasks.config.loading import load_config

    loaded = load_config(str(parameters["config"]), parameters.get("overrides"))
    return loaded.config.sandbox, loaded.base_dir
