"""A `prefect server start` of the test's own: its own PREFECT_HOME, a free port on 127.0.0.1, and
the database it is given (PostgreSQL for the scale-out test; SQLite in its home by default)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cli.local_server import healthy
from tests.scaleout import processes

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

START_TIMEOUT = 180.0  # the first start on an empty PostgreSQL database runs every migration


@dataclass(frozen=True)
class PrefectServer:
    api_url: str  # http://127.0.0.1:PORT/api
    home: Path
    log: Path
    pid: int  # of `prefect server start`, the root of its processes

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def client_env(self, **extra: str) -> dict[str, str]:
        """The environment of a process that talks to this server (a CLI call, a worker)."""
        return processes.clean_env(PREFECT_API_URL=self.api_url, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="false",
                                   PREFECT_SERVER_ANALYTICS_ENABLED="false", **extra)

    def client(self) -> SyncPrefectClient:
        """A synchronous Prefect client bound to this server (whatever this process's settings say)."""
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.api_url)


@contextmanager
def prefect_server(database_url: str | None = None, home: Path | None = None,
                   **settings: str) -> Iterator[PrefectServer]:
    """Start the server, wait for /api/health, stop it (SIGTERM to its process group) on exit.

    ``settings`` are extra PREFECT_* variables for the server, e.g.
    ``PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS="2"``.
    """
    with tempfile.TemporaryDirectory(prefix="prefect-server-") as scratch:
        home = home or Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        port = processes.free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        log = home / "server.log"
        env = processes.clean_env(
            PREFECT_HOME=str(home),
            PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            PREFECT_API_URL=api_url,
            PREFECT_UI_API_URL=api_url,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",  # no internet here: its telemetry call only slows start-up
            PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
            **settings,
        )
        proc = processes.start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env, log, cwd=home)
        try:
            processes.wait_until(lambda: healthy(api_url, timeout=1.0), proc, log, "prefect server", START_TIMEOUT)
            yield PrefectServer(api_url, home, log, proc.pid)
        finally:
            processes.stop(proc)
