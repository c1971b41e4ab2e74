"""Fixtures for running the analyses as a user scales them out: Prefect's server on PostgreSQL and
process workers. The pieces are plain context managers (postgres.py, prefect_server.py, workers.py)
so tests elsewhere can start them too."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.scaleout.postgres import PostgresCluster, postgres_cluster
from tests.scaleout.prefect_server import PrefectServer, prefect_server
from tests.scaleout.workers import Worker, process_workers


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this session (skipped, or failed in CI, without Debian's postgresql)."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def prefect_on_postgres(postgres: PostgresCluster) -> Iterator[PrefectServer]:
    """`prefect server start` on a fresh PostgreSQL database of its own."""
    database = f"prefect_{secrets.token_hex(4)}"
    postgres.create_database(database)
    # A run refused a deployment concurrency slot is retried after this long (default 30 s).
    with prefect_server(postgres.url(database), PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS="2") as server:
        yield server


@pytest.fixture
def start_process_workers() -> Iterator[Callable[..., list[Worker]]]:
    """``start_process_workers(server, pool, count=2, limit=2)``: workers stopped after the test."""
    # Not pytest's tmp_path: the sandboxes' Unix sockets live under the workers' TMPDIR, and a
    # socket path must stay under ~107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="analyst-so-"))
    try:
        with ExitStack() as stack:
            yield lambda server, pool, **kw: stack.enter_context(process_workers(server, pool, folder / pool, **kw))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
