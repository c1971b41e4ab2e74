"""Publish artifacts off the loop's critical path.

Each artifact is an HTTP round trip to the Prefect server (about 20 ms on SQLite here) plus the
rendering of its charts; done inline they added most of the flow's per-iteration overhead. One
worker thread publishes them in order while the loop goes on; ``close`` waits for the queue to
drain, so every artifact exists when the flow returns. Each call runs in a copy of the context it
was submitted from, so Prefect still attaches it to the right flow run.
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
        self._thread = threading.Thread(target=self._work, name="artifact-publisher", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queue.put((contextvars.copy_context(), fn, args))

    def close(self, timeout: float = 60.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> ArtifactPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _work(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            context, fn, args = item
            try:
                context.run(fn, *args)
            except Exception:  # noqa: BLE001 - an artifact is never worth failing the analysis
                logger.warning("Could not publish an artifact with %s", getattr(fn, "__name__", fn), exc_info=True)
