"""The toolbox half of the stand-in Daytona API (see tests/fakes/daytona_api.py): files, interpreter
contexts over WebSocket, and ``code-run``, for one sandbox each under ``/toolbox/{sid}``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.daytona_api import INTERRUPT_GRACE_S, WORKER, Context, FakeSandbox, error

if TYPE_CHECKING:
    from tests.fakes.daytona_api import FakeDaytonaAPI


def add_routes(api: FakeDaytonaAPI, r: web.UrlDispatcher) -> None:
    t = "/toolbox/{sid}"
    routes = Toolbox(api)
    r.add_get(f"{t}/work-dir", routes.work_dir)
    r.add_get(f"{t}/user-home-dir", routes.work_dir)
    r.add_post(f"{t}/files/folder", routes.folder)
    r.add_post(f"{t}/files/bulk-upload", routes.upload)
    r.add_post(f"{t}/files/bulk-download", routes.download)
    r.add_post(f"{t}/files/move", routes.move)
    r.add_delete(f"{t}/files", routes.delete)
    r.add_post(f"{t}/process/interpreter/context", routes.create_context)
    r.add_get(f"{t}/process/interpreter/context", routes.list_contexts)
    r.add_delete(f"{t}/process/interpreter/context/{{cid}}", routes.delete_context)
    r.add_get(f"{t}/process/interpreter/execute", routes.execute)
    r.add_post(f"{t}/process/code-run", routes.code_run)


def _path(sandbox: FakeSandbox, path: str) -> Path:
    return Path(path) if os.path.isabs(path) else sandbox.work / path


class Toolbox:
    def __init__(self, api: FakeDaytonaAPI):
        self.api = api

    # -- files ----------------------------------------------------------------------------

    async def work_dir(self, request: web.Request) -> web.Response:
        return web.json_response({"dir": str(self.api.find(request).work)})

    async def folder(self, request: web.Request) -> web.Response:
        _path(self.api.find(request), request.query["path"]).mkdir(parents=True, exist_ok=True)
        return web.Response()

    async def move(self, request: web.Request) -> web.Response:
        sandbox = self.api.find(request)
        os.replace(_path(sandbox, request.query["source"]), _path(sandbox, request.query["destination"]))
        return web.Response()

    async def delete(self, request: web.Request) -> web.Response:
        target = _path(self.api.find(request), request.query["path"])
        if not target.exists():
            return error(404, "file not found", code="FILE_NOT_FOUND", source="DAYTONA_DAEMON")
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return web.Response()

    async def upload(self, request: web.Request) -> web.StreamResponse:
        sandbox = self.api.find(request)
        cut_after = self.api._upload_faults.pop(0) if self.api._upload_faults else None
        record = {"headers": {k.lower(): v for k, v in request.headers.items()}, "paths": [], "received": 0}
        self.api.uploads.append(record)
        reader = await request.multipart()
        paths: dict[str, str] = {}
        while (part := await reader.next()) is not None:
            index, _, kind = (part.name or "").rpartition(".")
            if kind == "path":
                paths[index] = await part.text()
                continue
            target = _path(sandbox, paths[index])
            record["paths"].append(str(target))
            with open(target, "wb") as out:  # streamed: never the whole body in memory
                while chunk := await part.read_chunk(64 * 1024):
                    out.write(chunk)
                    record["received"] += len(chunk)
                    if cut_after is not None and record["received"] >= cut_after:
                        assert request.transport is not None
                        request.transport.abort()  # the connection drops mid-upload
                        raise asyncio.CancelledError
        return web.Response()

    async def download(self, request: web.Request) -> web.Response:
        sandbox = self.api.find(request)
        boundary = uuid.uuid4().hex
        chunks: list[bytes] = []
        for path in (await request.json())["paths"]:
            target = _path(sandbox, path)
            if target.is_file():
                head = f'name="file"; filename="{path}"\r\nContent-Type: application/octet-stream'
                data = target.read_bytes()
            else:
                head = f'name="error"; filename="{path}"\r\nContent-Type: application/json'
                data = json.dumps({"message": f"file not found: {path}", "statusCode": 404,
                                   "code": "FILE_NOT_FOUND"}).encode()
            chunks.append(f"--{boundary}\r\nContent-Disposition: form-data; {head}\r\n\r\n".encode() + data + b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return web.Response(body=b"".join(chunks),
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})

    # -- interpreter ----------------------------------------------------------------------

    def _context_json(self, context: Context) -> dict[str, Any]:
        now = datetime.now(timezone.utc).isoformat()
        return {"id": context.id, "cwd": context.cwd, "language": "python", "active": True, "createdAt": now}

    async def create_context(self, request: web.Request) -> web.Response:
        sandbox = self.api.find(request)
        body = await request.json()
        context = Context(uuid.uuid4().hex[:8], body.get("cwd") or str(sandbox.work), sandbox.env())
        sandbox.contexts[context.id] = context
        return web.json_response(self._context_json(context))

    async def list_contexts(self, request: web.Request) -> web.Response:
        sandbox = self.api.find(request)
        return web.json_response({"contexts": [self._context_json(c) for c in sandbox.contexts.values()]})

    async def delete_context(self, request: web.Request) -> web.Response:
        context = self.api.find(request).contexts.pop(request.match_info["cid"], None)
        if context is None:
            return error(404, "context not found")
        context.kill()
        return web.Response()

    async def execute(self, request: web.Request) -> web.WebSocketResponse:
        sandbox = self.api.find(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        message = await ws.receive()
        if message.type != WSMsgType.TEXT:
            await ws.close()
            return ws
        req = json.loads(message.data)
        context = sandbox.contexts.get(req.get("contextId") or "")
        if context is None:
            context = sandbox.contexts.setdefault("default", Context("default", str(sandbox.work), sandbox.env()))
        self.api.executions.append((sandbox.id, req["code"]))
        if self.api.hang_next_execution:  # a daemon that never answers, until the context is deleted
            self.api.hang_next_execution = False
            await context.closed.wait()
            await ws.close(code=1011, message=b"context deleted")
            return ws
        async with context.lock:
            code, reason = await self._run(context, req["code"], float(req.get("timeout") or 600), ws)
        await ws.close(code=code, message=reason.encode())
        return ws

    async def _run(self, context: Context, code: str, timeout: float, ws: web.WebSocketResponse) -> tuple[int, str]:
        proc = await context.ensure_proc()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"code": code}).encode() + b"\n")
        await proc.stdin.drain()
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), max(left, 0.001))
            except TimeoutError:
                return await self._interrupt(context, proc)
            if not line:
                return 1011, "the interpreter process exited"
            if json.loads(line)["type"] == "done":
                return 1000, ""
            await ws.send_str(line.decode())

    async def _interrupt(self, context: Context, proc: asyncio.subprocess.Process) -> tuple[int, str]:
        """As the daemon does on a timeout: interrupt the code; a process that ignores it is killed."""
        assert proc.stdout is not None
        proc.send_signal(signal.SIGINT)
        try:
            while True:
                line = await asyncio.wait_for(proc.stdout.readline(), INTERRUPT_GRACE_S)
                if not line or json.loads(line)["type"] == "done":
                    break
        except TimeoutError:
            context.kill()
        return 4008, "execution timed out"

    async def code_run(self, request: web.Request) -> web.Response:
        sandbox = self.api.find(request)
        body = await request.json()
        self.api.executions.append((sandbox.id, body["code"]))
        artifacts = sandbox.work.parent / f"artifacts-{uuid.uuid4().hex}.json"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", WORKER, "code-run", str(artifacts), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=sandbox.work, env=sandbox.env())
        try:
            timeout = float(body.get("timeout") or 600)
            output, _ = await asyncio.wait_for(proc.communicate(body["code"].encode()), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return error(408, "code execution timed out", code="PROCESS_EXECUTION_TIMEOUT", source="DAYTONA_DAEMON")
        charts = json.loads(artifacts.read_text()) if artifacts.exists() else []
        artifacts.unlink(missing_ok=True)
        return web.json_response({"exitCode": proc.returncode, "result": output.decode(errors="replace"),
                                  "artifacts": {"charts": charts}})
