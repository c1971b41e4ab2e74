"""`analyst serve` in a process of its own, for the tests that trigger served deployments."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


class Served:
    """A running `analyst serve`: its process and what it has printed so far."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self._lines: queue.Queue[str] = queue.Queue()
        self._output: list[str] = []
        threading.Thread(target=lambda: [self._lines.put(line) for line in process.stdout], daemon=True).start()

    @property
    def output(self) -> str:
        while not self._lines.empty():
            self._output.append(self._lines.get())
        return "".join(self._output)

    def wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith("Serving") for line in self.output.splitlines()):
            assert self.process.poll() is None and time.monotonic() < deadline, self.output
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)  # the runner's graceful shutdown
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_serving(paths: Sequence[str | Path], env: dict[str, str], cwd: Path | None = None,
                  timeout: float = 120.0) -> Served:
    """`analyst serve PATHS...` in its own process group, once it says it is serving."""
    process = subprocess.Popen([sys.executable, "-c", "from cli import app; app()", "serve", *map(str, paths)],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    served = Served(process)
    try:
        served.wait_until_serving(timeout)
    except BaseException:
        served.stop()
        raise
    return served


@contextmanager
def serving(paths: Sequence[str | Path], env: dict[str, str], cwd: Path | None = None,
            timeout: float = 120.0) -> Iterator[Served]:
    served = start_serving(paths, env, cwd, timeout)
    try:
        yield served
    finally:
        served.stop()
