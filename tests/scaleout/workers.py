"""`prefect worker start --pool NAME` processes of the test's own, as a user starts them on other hosts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.scaleout import processes
from tests.scaleout.prefect_server import PrefectServer

START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Worker:
    name: str
    proc: subprocess.Popen
    log: Path
    tmpdir: Path  # its TMPDIR, and its flow runs': where local sandboxes make their folders


@contextmanager
def process_workers(server: PrefectServer, pool: str, folder: Path, count: int = 2,
                    limit: int = 2, env: Mapping[str, str] | None = None) -> Iterator[list[Worker]]:
    """``count`` process workers polling ``pool``, each running at most ``limit`` flow runs at once.

    Each has its own PREFECT_HOME and TMPDIR under ``folder``; they are online (heartbeat seen by the
    server) when this yields, and stopped with SIGTERM (Prefect's graceful shutdown) on exit. ``env``
    is extra environment for the workers (and so their flow runs) only, e.g. a database URL that a user
    sets on the worker's host and nowhere else.
    """
    with ExitStack() as stack:
        workers = []
        for number in range(1, count + 1):
            name = f"{pool}-worker-{number}"
            home, tmpdir = folder / name / "home", folder / name / "tmp"
            tmpdir.mkdir(parents=True)
            home.mkdir()
            log = folder / name / "worker.log"
            worker_env = server.client_env(
                **(env or {}), PREFECT_HOME=str(home), TMPDIR=str(tmpdir),
                PREFECT_WORKER_QUERY_SECONDS="1",  # default 10: each triggered run would wait for the next poll
                PREFECT_WORKER_HEARTBEAT_SECONDS="5",
            )
            proc = processes.start([sys.executable, "-m", "prefect", "worker", "start", "--pool", pool,
                                    "--type", "process", "--name", name, "--limit", str(limit)], worker_env, log,
                                   cwd=home)
            stack.callback(processes.stop, proc, 60.0)
            workers.append(Worker(name, proc, log, tmpdir))
        _wait_online(server, pool, workers)
        yield workers


def _wait_online(server: PrefectServer, pool: str, workers: list[Worker]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with server.client() as client:
        while True:
            online = {w.name for w in client.read_workers_for_work_pool(pool) if w.status == "ONLINE"}
            if online >= {w.name for w in workers}:
                return
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise RuntimeError(f"worker {worker.name} exited ({worker.proc.returncode}):\n"
                                       f"{processes.tail(worker.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not online after {START_TIMEOUT:.0f} s (online: {sorted(online)}):\n"
                                   + "\n".join(processes.tail(w.log) for w in workers))
            time.sleep(0.5)
