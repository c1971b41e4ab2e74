"""Helpers for dataset tests: small files written into tmp_path, and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.config.schema import DatasetConfig

SCHEMA = {
    "schema_type": "dataframe",
    "columns": {
        "id": {"dtype": "int64", "unique": True, "greater_than_or_equal_to": 1},
        "price": {"dtype": "float64", "in_range": {"min_value": 0, "max_value": 100}},
        "city": {"dtype": "str", "isin": ["Paris", "Lyon", "Nice"]},
        "day": {"dtype": "datetime64[ns]", "greater_than_or_equal_to": "2024-01-01 00:00:00"},
    },
}
GOOD_CSV = "id,price,city,day\n1,9.5,Paris,2024-01-02\n2,20.0,Lyon,2024-02-03\n3,0.0,Nice,2024-03-04\n"


def dataset(path: str, schema: Any = None, **kwargs: Any) -> DatasetConfig:
    return DatasetConfig(name=kwargs.pop("name", "sales"), path=path,
                         schema=SCHEMA if schema is None else schema, **kwargs)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(folder, base URL): files written to the folder are served on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
