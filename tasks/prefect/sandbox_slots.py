"""A cap on the sandboxes alive at once, across all analyses: the Prefect global concurrency limit ``sandboxes``.

A run holds one slot of that limit from before it provisions its sandbox until after it has torn
it down, and waits for a free slot when all are in use. Without the limit (or with it inactive)
nothing is capped and nothing is created: set it with ``analyst limits set sandboxes N``.

The slot is a lease that the run renews while it lives (Prefect 3.4+): a run killed before it can
release its slot frees it when the lease runs out (LEASE_SECONDS, plus up to 15 s for the server's
repossessor to notice), so a crashed run cannot hold a slot forever.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from typing import Any
from uuid import UUID

from prefect import get_client, get_run_logger
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.exceptions import MissingContextError, ObjectNotFound

SANDBOX_LIMIT = "sandboxes"
# Renewed every 3/4 of it; the server accepts 60 s to 1 day. Shorter frees a killed run's slot
# sooner, longer survives a longer outage of the Prefect API without losing the slot.
LEASE_SECONDS = 120.0
_UNREAD = object()


class SandboxSlot:
    """One slot of ``sandboxes`` for one run: ``acquire()`` before provisioning, ``release()`` after teardown.

    Also a context manager. ``release()`` is safe to call whether or not a slot was taken.
    """

    def __init__(self, flow_run_id: str | None = None, limit_name: str = SANDBOX_LIMIT):
        self.limit_name = limit_name
        self.flow_run_id = flow_run_id
        self._held = ExitStack()

    def acquire(self, limit: Any = _UNREAD) -> bool:
        """Take a slot, waiting as long as it takes. False when no active limit caps sandboxes.
        ``limit``: the limit as ``read_limit`` just returned it, when the caller read it already."""
        logger = _logger()
        if limit is _UNREAD:
            limit = read_limit(self.limit_name)
        if limit is None or not limit.active:
            logger.info("Sandboxes are not capped (no active global concurrency limit %r; set one with "
                        "`analyst limits set %s N`)", self.limit_name, self.limit_name)
            return False
        waiting = limit.active_slots >= limit.limit
        if waiting:
            logger.info("Waiting for a sandbox slot: the global concurrency limit %r allows %d sandbox(es) at once "
                        "and %d are in use by other runs. This run provisions its sandbox when one ends "
                        "(see `analyst limits show`; raise the cap with `analyst limits set %s N`).",
                        self.limit_name, limit.limit, limit.active_slots, self.limit_name)
        started = time.monotonic()
        # strict=False: if the limit is deleted meanwhile, Prefect logs it and the run goes on uncapped.
        # Lease renewal failures only warn: a blip of the API must not kill a running analysis.
        self._held.enter_context(concurrency(self.limit_name, occupy=1, lease_duration=LEASE_SECONDS,
                                             strict=False, holder=self._holder(),
                                             raise_on_lease_renewal_failure=False))
        if waiting:
            logger.info("Got a sandbox slot of %r after %.0f s", self.limit_name, time.monotonic() - started)
        return True

    def release(self) -> None:
        try:
            self._held.close()
        except Exception:  # noqa: BLE001 - never mask the run's outcome; an unreleased lease expires by itself
            _logger().warning("Could not release the sandbox slot of %r; it frees itself within %.0f s",
                              self.limit_name, LEASE_SECONDS, exc_info=True)

    def __enter__(self) -> SandboxSlot:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _holder(self) -> Any:
        try:
            return ConcurrencyLeaseHolder(type="flow_run", id=UUID(self.flow_run_id)) if self.flow_run_id else None
        except ValueError:
            return None


def read_limit(name: str = SANDBOX_LIMIT) -> Any | None:
    """The global concurrency limit ``name`` on the Prefect server, or None if there is none."""
    with get_client(sync_client=True) as client:
        try:
            return client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return None


def _logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("analyst.sandbox_slots")
