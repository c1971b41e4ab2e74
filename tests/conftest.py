"""Shared fixtures."""

from __future__ import annotations

import glob
import os
import shutil
import socket
from collections.abc import Iterator

import pytest

from tests.fakes.anthropic_api import FakeAnthropicAPI


@pytest.fixture
def anthropic_api() -> Iterator[FakeAnthropicAPI]:
    """A scripted stand-in for the Anthropic Messages API on 127.0.0.1 (see tests/fakes/anthropic_api.py).

    Point ``ModelConfig(base_url=anthropic_api.base_url)`` or ``anthropic.Anthropic(base_url=...)`` at it,
    enqueue turns and faults, then assert on ``anthropic_api.requests``.
    """
    with FakeAnthropicAPI() as api:
        yield api


@pytest.fixture(scope="session")
def _local_prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real local Prefect server (SQLite, a free port, a temporary home) for the whole session:
    the path `analyst run` takes, and far cheaper than a temporary server per test module."""
    from cli import local_server

    home = tmp_path_factory.mktemp("prefect-server") / "analyst"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANALYST_HOME", str(home))
        patch.setenv("ANALYST_SERVER_PORT", str(port))
        patch.delenv("PREFECT_API_URL", raising=False)
        try:
            yield local_server.ensure_server()
        finally:
            from prefect.logging.handlers import APILogHandler

            APILogHandler().flush()  # send the last run logs while the server is still there
            local_server.stop()


@pytest.fixture
def prefect_api(_local_prefect_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this process's Prefect at the session's local server (other tests may have moved it)."""
    from cli import local_server

    monkeypatch.setenv("PREFECT_API_URL", _local_prefect_server)
    local_server.use_api_url(_local_prefect_server, local=True)
    return _local_prefect_server


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch):
    """Invoke the ``analyst`` command in this process: ``cli("validate", path)`` -> click Result."""
    import sys

    from rich.console import Console
    from typer.testing import CliRunner

    from cli import app

    monkeypatch.setenv("COLUMNS", "200")
    # The commands' consoles are made at import, which may have happened before COLUMNS was set.
    for module in [m for name, m in sys.modules.items() if name == "cli" or name.startswith("cli.")]:
        for value in vars(module).values():
            if isinstance(value, Console):
                monkeypatch.setattr(value, "width", 200)
    monkeypatch.delenv("ANALYST_DEBUG", raising=False)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def system_command(name: str, package: str) -> str:
    """The path of a system command a slow test needs (PostgreSQL's are looked for in Debian's folder too).

    Missing, the test is skipped with the install command, or fails where ANALYST_REQUIRE_SYSTEM_TESTS=1
    (CI), so a missing package can never pass as a skip there.
    """
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    message = f"{name} is missing: apt-get install {package} (make test installs it when run as root)"
    if os.environ.get("ANALYST_REQUIRE_SYSTEM_TESTS") == "1":
        pytest.fail(message)
    pytest.skip(message)
