"""HTTP datasets send headers whose values come from the environment (or a Secret block)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tasks.config.schema import DatasetConfig
from tasks.datasets import read_dataset
from tasks.errors import DataError


class _TokenOnly(BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.headers.get("Authorization") == "Bearer t0ken"
        body = b"x\n1\n" if ok else b"denied"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/data.csv"
    server.shutdown()


def _dataset(url: str) -> DatasetConfig:
    return DatasetConfig(name="api", path=url, headers={"Authorization": {"env": "API_TOKEN"}}, schema="u.yaml")


def test_the_header_value_comes_from_the_environment(api, monkeypatch, tmp_path):
    monkeypatch.setenv("API_TOKEN", "Bearer t0ken")
    assert read_dataset(_dataset(api), tmp_path)["x"].to_list() == [1]


def test_a_missing_variable_is_one_line_and_nothing_is_sent(api, monkeypatch, tmp_path):
    monkeypatch.delenv("API_TOKEN", raising=False)
    with pytest.raises(DataError, match=r"^dataset 'api' .*cannot read a header's value: the environment "
                                        r"variable API_TOKEN is not set$"):
        read_dataset(_dataset(api), tmp_path)


def test_a_header_value_written_in_the_config_is_refused():
    with pytest.raises(ValueError, match="Input should be a valid dictionary"):
        DatasetConfig(name="api", path="https://x/d.csv", headers={"Authorization": "Bearer t0ken"}, schema="u.yaml")
