"""A quota on what the code writes to the local sandbox's work folder, which lives on the host's disk.

``RLIMIT_FSIZE`` stops any one file at ``sandbox.disk``, but many files could still fill the host's
disk. While a cell runs, a watcher measures the work folder (the uploaded datasets not counted)
twice a second and interrupts the cell once it has written past the quota, or past what was
already there when the cell started if that was more (so that a cell deleting files can run). It
reads the folder without following links; a folder of more than ``MAX_ENTRIES`` entries counts as
over, since it could not be measured.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

MAX_ENTRIES = 200_000
INTERVAL_S = 0.5


def usage_bytes(folder: Path) -> int | None:
    """Bytes on disk under ``folder`` (allocated blocks, so sparse files count what they use), or None
    past ``MAX_ENTRIES`` entries."""
    total, seen, todo = 0, 0, [str(folder)]
    while todo:
        try:
            entries = os.scandir(todo.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                seen += 1
                if seen > MAX_ENTRIES:
                    return None
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    todo.append(entry.path)
    return total


class DiskWatch:
    """``with DiskWatch(folder, allowed, on_over):`` while a cell runs; ``exceeded`` after."""

    def __init__(self, folder: Path, allowed_bytes: int, on_over: Callable[[], None], interval: float = INTERVAL_S):
        self.folder = folder
        start = usage_bytes(folder)
        self.allowed = max(allowed_bytes, start if start is not None else 0)
        self.on_over = on_over
        self.interval = interval
        self.exceeded = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sandbox-disk-watch", daemon=True)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            used = usage_bytes(self.folder)
            if used is None or used > self.allowed:
                self.exceeded = True
                try:
                    self.on_over()
                except Exception:  # noqa: BLE001 - the kernel may be gone; the run's own checks report that
                    pass
                return
