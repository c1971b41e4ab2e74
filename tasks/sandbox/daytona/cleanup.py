"""Finding and deleting Daytona sandboxes this tool created, by label: for `analyst sandboxes` and for
the flow's crash hook (``tasks/prefect/crash_hooks.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tasks.sandbox.daytona.client import CREATED_BY, translate

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
