"""Killing a process together with everything it started, and waiting until they are gone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Children, grandchildren... as the kernel lists them (orphans inside a PID namespace are
    re-parented to its init, which is itself a descendant, so they are found too)."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{parent}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kill_tree(proc: subprocess.Popen[bytes], wait_s: float = 3.0) -> None:
    """SIGKILL the process, its process group and all its descendants; return once they are gone.
    Inside a PID namespace the init's death alone would end the rest, but asynchronously, and
    without isolation nothing would."""
    tree = [proc.pid, *descendants(proc.pid)]
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()
    end = time.monotonic() + wait_s
    while any(running(pid) for pid in tree[1:]) and time.monotonic() < end:
        time.sleep(0.01)
