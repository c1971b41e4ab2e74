"""Publish artifacts off the loop's critical path.

Each artifact is an HTTP round trip to the Prefect server (about 20 ms on SQLite here) plus the
rendering of its charts; done inline they added most of the flow's per-iteration overhead. One
worker thread publishes them in order while the loop goes on; ``close`` waits for the queue to
drain, so every artifact exists when the flow returns. Each call runs in a copy of the context it
was submitted from, so Prefect still attaches it to the right flow run. A call submitted with a
``latest`` key is skipped when a later one with that key is already queued: a progress bar needs
only its last value, and when the loop outpaces the server (a replay) the skipped round trips
are server work the sandbox no longer competes with for the cores.
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()
logger = logging.getLogger(__name__)


class ArtifactPublisher:
    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._pending = 0  # submitted and not yet done
        self._latest: dict[str, object] = {}  # key -> the token of the last call submitted with it
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="artifact-publisher", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, latest: str | None = None) -> None:
        token = object()
        with self._lock:
            self._pending += 1
            if latest is not None:
                self._latest[latest] = token
        self._queue.put((contextvars.copy_context(), fn, args, latest, token))

    def close(self, timeout: float = 60.0) -> int:
        """Wait up to ``timeout`` seconds for the queue to drain; returns how many artifacts it could not
        publish in that time (the thread is a daemon: they are lost when the process exits), saying so."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        with self._lock:
            left = self._pending
        if left:
            logger.warning("%d Prefect artifact(s) were still unpublished after %g s (is the Prefect server slow or "
                           "unreachable?): they are left out; the run's files hold everything they show", left, timeout)
        return left

    def __enter__(self) -> ArtifactPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            context, fn, args, latest, token = item
            try:
                with self._lock:
                    superseded = latest is not None and self._latest[latest] is not token
                if not superseded:
                    context.run(fn, *args)
            except BaseException:  # noqa: BLE001 - an artifact is never worth failing the analysis, nor this thread
                logger.warning("Could not publish an artifact with %s", getattr(fn, "__name__", fn), exc_info=True)
            finally:
                with self._lock:
                    self._pending -= 1
