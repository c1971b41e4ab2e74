"""A quota on what the code writes to the host's disk from the local sandbox.

The sandbox writes to the host's disk in two folders only: its work folder (``/sandbox``) and its
kernel's socket folder (``/run/kernel``); everything else it can write is a tmpfs in memory, bounded
by ``sandbox.memory``, or read-only. ``RLIMIT_FSIZE`` stops any one file at ``sandbox.disk``; many
files are held by a watcher that measures both folders twice a second for the sandbox's whole life
(a thread of the code's may write between cells), against a fixed allowance: ``sandbox.disk`` plus
the uploaded datasets. Past it, a running cell is interrupted first; if the folders keep growing,
or no cell runs, the kernel's processes are killed (the next run reports it and starts a new
session). A cell may then delete files and go on. The folders are read without following links;
past ``MAX_ENTRIES`` entries they count as over, since they could not be measured.

Why not a size-limited filesystem: a tmpfs would hold the data in RAM, and a loop-mounted image
or a disk quota needs root and a set-up this tool cannot assume on a user's machine.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

MAX_ENTRIES = 200_000
INTERVAL_S = 0.5
# Growth tolerated after acting: a restarted kernel writes its connection file and sockets.
REGROWTH_BYTES = 1024**2


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


def folders_usage(folders: list[Path]) -> int | None:
    total = 0
    for folder in folders:
        used = usage_bytes(folder)
        if used is None:
            return None
        total += used
    return total


class DiskWatch:
    """Started once per sandbox (``start``/``stop``). ``on_over(kill)`` is called from the watcher's
    thread: ``kill`` False asks to interrupt the running cell, True to end the kernel's processes."""

    def __init__(self, folders: list[Path], allowed_bytes: int, on_over: Callable[[bool], None],
                 cell_running: Callable[[], bool], interval: float = INTERVAL_S):
        self.folders = folders
        self.allowed = allowed_bytes
        self.on_over = on_over
        self.cell_running = cell_running
        self.interval = interval
        self.exceeded = False  # since the last ``take_exceeded``
        self._acted_at: int | None = None  # the usage when we last acted
        self._lock = threading.Lock()  # check() runs in the watcher's thread, rebase() in the run's
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sandbox-disk-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def take_exceeded(self) -> bool:
        exceeded, self.exceeded = self.exceeded, False
        return exceeded

    def rebase(self) -> None:
        """Called once the killed kernel's processes are gone, before a new one starts: what they wrote
        after the usage we acted on (the write under way when the signal came) is not the new session's
        growth, and must not get the new kernel killed as it starts."""
        with self._lock:
            if self._acted_at is not None:
                used = folders_usage(self.folders)
                self._acted_at = max(self._acted_at, used if used is not None else self.allowed)

    def check(self) -> None:
        with self._lock:
            self._check()

    def _check(self) -> None:
        used = folders_usage(self.folders)
        if used is not None and used <= self.allowed:
            self._acted_at = None
            return
        if self._acted_at is not None and used is not None and used <= self._acted_at + REGROWTH_BYTES:
            return  # over since we acted, but not growing: the code may be deleting files
        kill = self._acted_at is not None or not self.cell_running()
        self._acted_at = used if used is not None else self.allowed
        self.exceeded = True
        try:
            self.on_over(kill)
        except Exception:  # noqa: BLE001 - the kernel may be gone; the run's own checks report that
            pass

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()
