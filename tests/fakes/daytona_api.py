"""A stand-in for the Daytona API and the toolbox routes the ``daytona`` SDK uses, served on
127.0.0.1 by aiohttp in a background thread. It runs the code it receives for real: each interpreter
context is a Python process (tests/fakes/daytona_worker.py) that keeps its globals, each
``code-run`` a fresh one, in a folder per sandbox (no isolation: this is a test double).

Point the real SDK at it: ``DaytonaConfig(api_key=api.api_key, api_url=api.api_url)``, or set
``DAYTONA_API_KEY`` / ``DAYTONA_API_URL`` (``api.env()``). Routes, as daytona 0.226 sends them:

- API: ``POST /api/sandbox`` (create), ``GET /api/sandbox`` (list, ``labels`` JSON filter),
  ``GET|DELETE /api/sandbox/{id}``, ``GET /api/sandbox/{id}/toolbox-proxy-url``. A new sandbox is
  ``starting`` for ``start_delay`` seconds, then ``started``. The SDK's Socket.IO event channel is
  not served (404): the SDK falls back to polling, as it does when the channel is down.
- Toolbox, under ``/toolbox/{id}``: ``GET /work-dir``, ``POST /files/folder``, ``POST /files/bulk-upload``
  (multipart, streamed to disk), ``POST /files/bulk-download`` (multipart answer), ``POST /files/move``,
  ``DELETE /files``, ``POST|GET /process/interpreter/context``, ``DELETE .../context/{cid}``,
  ``GET /process/interpreter/execute`` (WebSocket: stdout/stderr/error chunks; close 1000 when done,
  4008 on timeout after interrupting the code, 1011 if the process died), ``POST /process/code-run``
  (408 ``PROCESS_EXECUTION_TIMEOUT`` on timeout).

Faults: ``fail_creates(503, 429, ...)`` answers the next creations with those statuses
(``create_anyway=True``: the sandbox is made but the answer is lost); ``fail_deletes(503)``;
``never_start = True``; ``hang_next_execution = True`` (an execute that never answers);
``cut_uploads(after_bytes=...)`` drops the connection of the next upload mid-body; any request
without ``Authorization: Bearer <api_key>`` gets 401.

Records: ``requests`` (``Recorded``: method, path, query, json body, headers), ``created`` (the create
bodies), ``sandboxes`` (live, by id: ``FakeSandbox`` with ``work`` and ``body``), ``deleted`` (ids),
``executions`` (code sent to interpreters), ``uploads`` (path, bytes received, headers).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

WORKER = str(Path(__file__).with_name("daytona_worker.py"))
INTERRUPT_GRACE_S = 2.0


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Context:
    id: str
    cwd: str
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def ensure_proc(self) -> asyncio.subprocess.Process:
        if self.proc is None or self.proc.returncode is not None:  # a dead worker restarts empty
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-u", WORKER, "repl", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, cwd=self.cwd, env=self.env,
                limit=1 << 24)
        return self.proc

    def kill(self) -> None:
        self.closed.set()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


@dataclass
class FakeSandbox:
    id: str
    body: dict[str, Any]
    work: Path
    created: float
    created_at: str
    contexts: dict[str, Context] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        # What the sandbox's processes see: the env vars it was created with, nothing of the host.
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.work), **(self.body.get("env") or {})}


class FakeDaytonaAPI:
    def __init__(self, api_key: str = "dtn-test-key", *, start_delay: float = 0.0):
        self.api_key = api_key
        self.start_delay = start_delay
        self.never_start = False
        self.hang_next_execution = False
        self.requests: list[Recorded] = []
        self.sandboxes: dict[str, FakeSandbox] = {}
        self.deleted: list[str] = []
        self.executions: list[tuple[str, str]] = []
        self.uploads: list[dict[str, Any]] = []
        self._create_faults: list[tuple[int, bool]] = []
        self._upload_faults: list[int] = []
        self._delete_faults: list[int] = []
        self._root = Path(tempfile.mkdtemp(prefix="fake-daytona-"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api"

    def env(self) -> dict[str, str]:
        return {"DAYTONA_API_KEY": self.api_key, "DAYTONA_API_URL": self.api_url}

    def start(self) -> FakeDaytonaAPI:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fake-daytona", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Daytona API did not start")
        return self

    def _serve(self, ready: threading.Event) -> None:
        self._loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._runner = web.AppRunner(self._app(), handle_signals=False)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()
        loop.run_forever()

    def stop(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            assert self._thread is not None
            self._thread.join(10)
        shutil.rmtree(self._root, ignore_errors=True)

    async def _shutdown(self) -> None:
        for sandbox in self.sandboxes.values():
            for context in sandbox.contexts.values():
                context.kill()
        assert self._runner is not None
        await self._runner.cleanup()

    def __enter__(self) -> FakeDaytonaAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------

    def fail_creates(self, *statuses: int, create_anyway: bool = False) -> None:
        self._create_faults.extend((s, create_anyway) for s in statuses)

    def fail_deletes(self, *statuses: int) -> None:
        self._delete_faults.extend(statuses)

    def cut_uploads(self, count: int = 1, after_bytes: int = 256 * 1024) -> None:
        self._upload_faults.extend([after_bytes] * count)

    @property
    def created(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.method == "POST" and r.path == "/api/sandbox"
                and isinstance(r.body, dict)]

    # -- app ------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        from tests.fakes import daytona_toolbox

        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_post("/api/sandbox", self._create)
        r.add_get("/api/sandbox", self._list)
        r.add_get("/api/sandbox/{sid}", self._get)
        r.add_delete("/api/sandbox/{sid}", self._delete)
        r.add_get("/api/sandbox/{sid}/toolbox-proxy-url", self._proxy_url)
        daytona_toolbox.add_routes(self, r)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if "/socket.io" in request.path:
            raise web.HTTPNotFound()
        body = None
        if request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body,
                                      {k.lower(): v for k, v in request.headers.items()}))
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return error(401, "Invalid credentials")
        return await handler(request)

    def find(self, request: web.Request) -> FakeSandbox:
        sandbox = self.sandboxes.get(request.match_info["sid"])
        if sandbox is None:
            raise web.HTTPNotFound(text=json.dumps({"statusCode": 404, "message": "Sandbox not found"}),
                                   content_type="application/json")
        return sandbox

    def dto(self, sandbox: FakeSandbox, state: str | None = None) -> dict[str, Any]:
        b = sandbox.body
        started = not self.never_start and time.monotonic() - sandbox.created >= self.start_delay
        return {
            "id": sandbox.id, "organizationId": "org-test", "name": b.get("name") or sandbox.id,
            "snapshot": b.get("snapshot"), "user": "daytona", "env": b.get("env") or {},
            "labels": b.get("labels") or {},
            "public": bool(b.get("public")), "networkBlockAll": bool(b.get("networkBlockAll")), "kvm": False,
            "networkAllowList": b.get("networkAllowList"), "domainAllowList": b.get("domainAllowList"),
            "target": b.get("target") or "us", "cpu": b.get("cpu") or 1, "gpu": 0, "memory": b.get("memory") or 1,
            "disk": b.get("disk") or 3, "state": state or ("started" if started else "starting"),
            "autoStopInterval": b.get("autoStopInterval", 15), "autoDeleteInterval": b.get("autoDeleteInterval", -1),
            "autoArchiveInterval": b.get("autoArchiveInterval", 10080), "createdAt": sandbox.created_at,
            "updatedAt": sandbox.created_at, "toolboxProxyUrl": f"{self.base_url}/toolbox",
        }

    def new_sandbox(self, body: dict[str, Any]) -> FakeSandbox:
        sid = uuid.uuid4().hex[:12]
        work = self._root / sid / "home" / "daytona"
        work.mkdir(parents=True)
        sandbox = FakeSandbox(sid, body, work, time.monotonic(),
                              datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        self.sandboxes[sid] = sandbox
        return sandbox

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self._create_faults:
            status, create_anyway = self._create_faults.pop(0)
            if create_anyway:
                self.new_sandbox(body)
            return error(status, "Too many requests" if status == 429 else "Service unavailable")
        return web.json_response(self.dto(self.new_sandbox(body)))

    async def _list(self, request: web.Request) -> web.Response:
        wanted = json.loads(request.query.get("labels") or "{}")
        items = [self.dto(s) for s in self.sandboxes.values()
                 if all((s.body.get("labels") or {}).get(k) == v for k, v in wanted.items())]
        return web.json_response({"items": items, "nextCursor": None})

    async def _get(self, request: web.Request) -> web.Response:
        return web.json_response(self.dto(self.find(request)))

    async def _delete(self, request: web.Request) -> web.Response:
        sandbox = self.find(request)
        if self._delete_faults:
            return error(self._delete_faults.pop(0), "Service unavailable")
        del self.sandboxes[sandbox.id]
        self.deleted.append(sandbox.id)
        for context in sandbox.contexts.values():
            context.kill()
        return web.json_response(self.dto(sandbox, state="destroyed"))

    async def _proxy_url(self, request: web.Request) -> web.Response:
        self.find(request)
        return web.json_response({"url": f"{self.base_url}/toolbox"})


def error(status: int, message: str, **extra: Any) -> web.Response:
    headers = {"Retry-After": "0"} if status == 429 else None
    return web.json_response({"statusCode": status, "message": message, **extra}, status=status, headers=headers)

