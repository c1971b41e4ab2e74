"""Progress events from a running analysis, for whoever is watching in this process (the CLI).

The flow runs in the CLI's process, so a plain in-process observer list is enough; Prefect's own
logs and artifacts carry the same progress to the UI.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)
Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def emit(kind: str, data: dict[str, Any]) -> None:
    for listener in list(_listeners):
        try:
            listener(kind, data)
        except Exception:  # noqa: BLE001 - a display that fails must never fail the run it shows
            log.warning("progress listener %r failed on %r; the run goes on", listener, kind, exc_info=True)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)
