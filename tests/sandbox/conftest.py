"""Fixtures for the Daytona provider: the stand-in API (tests/fakes/daytona_api.py) and the SDK's
environment pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.daytona_api import FakeDaytonaAPI


@pytest.fixture(scope="module")
def daytona_server() -> Iterator[FakeDaytonaAPI]:
    """One stand-in per test module (starting one is cheap; its records are what tests read)."""
    with FakeDaytonaAPI() as api:
        yield api


@pytest.fixture
def daytona_api(daytona_server: FakeDaytonaAPI, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDaytonaAPI]:
    """The module's stand-in, with DAYTONA_API_KEY / DAYTONA_API_URL set for this test, its faults
    reset and its request log cleared."""
    for name, value in daytona_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DAYTONA_TARGET", raising=False)
    daytona_server.requests.clear()
    daytona_server.never_start = False
    daytona_server.start_delay = 0.0
    yield daytona_server
    daytona_server._create_faults.clear()
    daytona_server._upload_faults.clear()
    daytona_server._delete_faults.clear()


def pytest_configure(config: pytest.Config) -> None:
    # aiohttp's own multipart reader (the stand-in's streamed uploads) calls its deprecated unread_data().
    config.addinivalue_line("filterwarnings", "ignore:unread_data\\(\\) is deprecated:DeprecationWarning")
