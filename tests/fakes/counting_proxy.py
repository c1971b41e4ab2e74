"""A proxy on 127.0.0.1 in front of a real server that counts the requests it passes on, by method and path."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class CountingProxy:
    """``with CountingProxy("http://127.0.0.1:4200/api") as proxy:`` then use ``proxy.url`` in its place;
    ``proxy.requests`` lists ``"POST /api/artifacts/filter"`` and the like, in order."""

    def __init__(self, target: str, requests: list[str] | None = None) -> None:
        self.requests: list[str] = [] if requests is None else requests
        seen, origin = self.requests, target.split("/api", 1)[0]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Prefect's client expects

            def _forward(self) -> None:
                seen.append(f"{self.command} {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = urllib.request.Request(
                    origin + self.path, data=body or None, method=self.command,
                    headers={k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP})
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                try:
                    with opener.open(request, timeout=60) as response:
                        status, headers, payload = response.status, response.headers, response.read()
                except urllib.error.HTTPError as error:
                    status, headers, payload = error.code, error.headers, error.read()
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward  # noqa: N815 - the names http.server calls

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api"

    def __enter__(self) -> CountingProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
