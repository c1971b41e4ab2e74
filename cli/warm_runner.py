"""The warm runner: a process that has imported what ``analyst run`` needs and forks a copy of
itself for each run a client (cli/warm_client.py) hands it.

    python -m cli.warm_runner        (started by `analyst run`; its output goes to runner.log)

The runner itself never runs an analysis, so each fork starts from the same state a fresh
process would reach after its imports: the run sets its environment, working folder, umask,
standard streams and Prefect's settings and logging from the client's, then runs the CLI. Nothing
at import time starts a thread that could hold a lock across the fork (polars' thread pool starts
on first use; jemalloc and OpenBLAS re-arm theirs after a fork).

It refuses connections from other users (SO_PEERCRED), kills a run whose client went away without
its exit code (a SIGKILL to the client kills the run, as it would have killed a cold one), and
exits when the local Prefect server it was started for stops, when its code or environment
fingerprint changes, after IDLE_SECONDS without a run, or on SIGTERM once its runs have ended.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from cli import local_server
from cli.progress import quiet_prefect_console
from cli.warm_client import HEADER, address

IDLE_SECONDS = 30 * 60
CHECK_SECONDS = 5.0
MAX_REQUEST = 1 << 20  # the argv and environment of one call
# What `analyst run` imports, at its start and lazily later (tests/flows/test_warm_runner.py checks
# that a run in a runner imports nothing more than the CLI's own modules, which make its consoles).
PRELOAD = (
    "typer", "typer._adapters", "typer._click.decorators", "rich.console", "rich.live", "rich._emoji_codes",
    "anthropic", "truststore", "httpcore2", "genai_prices", "genai_prices.data", "genai_prices.decompose",
    "genai_prices.validation", "encodings.unicode_escape", "encodings.idna",
    "prefect", "prefect.flow_engine", "prefect.task_engine", "prefect.utilities.visualization", "fastapi.encoders",
    "anyio._backends._asyncio", "anyio.streams.memory", "anyio.streams.stapled",
    "flows.analysis", "flows.crash_detection",
    "pandera.polars", "pandera.pandas", "pandera.io", "pandera.backends.polars.container",
    "pandera.backends.polars.components", "pandera.backends.polars.builtin_checks",
    "pandera.backends.polars.checks", "pandera.backends.register_checks",
    "sqlalchemy", "obstore",
    "tasks.datasets.runnable", "tasks.datasets.validation", "tasks.datasets.staging", "tasks.datasets.sql",
    "tasks.datasets.object_store", "tasks.models.anthropic_provider", "tasks.models.pricing",
    "tasks.agent.loop", "tasks.sandbox.local.sandbox", "pyseccomp", "PIL.Image", "PIL.BmpImagePlugin",
    "PIL.GifImagePlugin", "PIL.JpegImagePlugin", "PIL.PpmImagePlugin",
    "tasks.reports.trends", "matplotlib.backends.backend_agg", "matplotlib.figure",
)


class RunEnded(Exception):
    """Raised in a forked run once it is done: unwinds to the module's end, where it exits."""

    def __init__(self, code: int):
        self.code = code


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} runner {os.getpid()}: {message}", flush=True)


def preload() -> None:
    quiet_prefect_console()
    # polars warns on every fork that a fork can deadlock it: only when its threads hold locks,
    # and none have run here.
    warnings.filterwarnings("ignore", message=".*fork.*", category=RuntimeWarning)
    for name in PRELOAD:
        importlib.import_module(name)
    from rich.cells import cell_len

    cell_len("漢")  # rich loads its table of character widths on first use, by Unicode version


def main() -> None:
    env = dict(os.environ)
    server = local_server.status()
    if not server.running:
        log("no local Prefect server runs for this project: nothing to serve")
        return
    where = address(env)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(where)
    except OSError:
        log("another runner serves this environment")
        return
    began = time.monotonic()
    preload()
    listener.listen(16)  # bound, not listening while it imports: a client meanwhile runs in its own process
    log(f"ready in {time.monotonic() - began:.1f} s for the server at {server.url}")
    Runner(listener, server, lambda: address(env) == where).serve()


class Runner:
    def __init__(self, listener: socket.socket, server: local_server.ServerStatus, unchanged: Callable[[], bool]):
        self.listener: socket.socket | None = listener
        self.server = server
        self.unchanged = unchanged
        self.runs: dict[int, socket.socket | None] = {}  # pid -> its client's connection, None once gone
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.last_active = time.monotonic()

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop("SIGTERM"))
        checked = time.monotonic()
        while self.listener is not None or self.runs:
            for key, _ in self.selector.select(timeout=1.0):
                if key.fileobj is self.listener:
                    self.accept()
                else:
                    self.client_went_away(key.data)
            self.reap()
            if time.monotonic() - checked >= CHECK_SECONDS:
                checked = time.monotonic()
                self.check_lifetime()
        log("stopped")

    def stop(self, why: str) -> None:
        if self.listener is not None:
            log(f"stops taking runs: {why}")
            self.selector.unregister(self.listener)
            self.listener.close()
            self.listener = None

    def check_lifetime(self) -> None:
        now = local_server.status()
        if not now.running or now.pid != self.server.pid:
            self.stop("the local Prefect server stopped")
        elif not self.runs and time.monotonic() - self.last_active > IDLE_SECONDS:
            self.stop(f"no run for {IDLE_SECONDS // 60} minutes")
        elif not self.unchanged():
            self.stop("the code, the installed packages or the environment changed")

    def accept(self) -> None:
        assert self.listener is not None
        conn, _ = self.listener.accept()
        conn.settimeout(5.0)  # a client that connects and says nothing does not hold the runner up
        fds: list[int] = []
        try:
            _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():
                log(f"refused a connection from uid {uid}")
                conn.close()
                return
            header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 3)
            if len(header) != HEADER.size or len(fds) != 3:
                raise ValueError("no request")  # a probe: connected, then closed
            (length,) = HEADER.unpack(header)
            if length > MAX_REQUEST:
                raise ValueError(f"a request of {length} bytes")
            request = json.loads(_receive(conn, length))
        except (OSError, ValueError) as exc:
            if str(exc) != "no request":
                log(f"dropped a connection: {exc}")
            for fd in fds:
                os.close(fd)
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            self.become_run(conn, fds, request)
        for fd in fds:
            os.close(fd)
        self.last_active = time.monotonic()
        self.runs[pid] = conn
        log(f"run {pid}: analyst {' '.join(request['argv'][:2])} ...")
        try:
            conn.sendall(f"pid {pid}\n".encode())
        except OSError:
            self.client_went_away(pid)
            return
        conn.setblocking(False)
        self.selector.register(conn, selectors.EVENT_READ, pid)

    def client_went_away(self, pid: int) -> None:
        """Its client sends nothing after its request: readable means closed, so the command was
        killed outright. The run ends as it would have with it."""
        conn = self.runs.get(pid)
        if conn is not None:
            self.selector.unregister(conn)
            conn.close()
            self.runs[pid] = None
            log(f"run {pid}: its client went away; killing the run")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(self) -> None:
        while self.runs:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            conn = self.runs.pop(pid, None)
            self.last_active = time.monotonic()
            log(f"run {pid}: exit {code}")
            if conn is not None:
                self.selector.unregister(conn)
                try:
                    conn.setblocking(True)
                    conn.sendall(f"exit {code}\n".encode())
                except OSError:
                    pass
                conn.close()

    def become_run(self, conn: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
        """In the forked child: become the client's `analyst` process, run it, and exit."""
        code = 1
        try:
            self.selector.close()
            for other in [self.listener, conn, *self.runs.values()]:
                if other is not None:
                    other.close()
            os.setpgid(0, 0)  # its own group: a killed client's run is killed with all it started
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
                signal.signal(number, signal.SIG_DFL)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 2:
                    os.close(fd)
            os.chdir(request["cwd"])
            os.umask(request["umask"])
            os.environ.clear()
            os.environ.update(request["env"])
            if isinstance(sys.stdout, io.TextIOWrapper):  # buffered as a fresh process buffers it
                sys.stdout.reconfigure(line_buffering=sys.stdout.isatty())
            sys.argv = ["analyst", *request["argv"]]
            _take_up_environment()
            from cli.commands import app

            app(request["argv"], prog_name="analyst")
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
            if isinstance(done.code, str):
                print(done.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - as an uncaught exception ends a fresh process
            traceback.print_exc()
            code = 1
        raise RunEnded(code)


def _take_up_environment() -> None:
    """Prefect read its settings and set up its logging when the runner imported it: again, now
    that the environment and the standard streams are the client's."""
    import prefect.context
    from prefect.logging.configuration import setup_logging

    quiet_prefect_console()  # as `analyst run` sets it before prefect is imported
    prefect.context.refresh_global_settings_context()
    setup_logging(incremental=False)


def _receive(conn: socket.socket, length: int) -> bytes:
    data = bytearray()
    while len(data) < length:
        chunk = conn.recv(min(65536, length - len(data)))
        if not chunk:
            raise ValueError("the request was cut short")
        data += chunk
    return bytes(data)


if __name__ == "__main__":
    try:
        main()
    except RunEnded as ended:
        sys.stdout.flush()
        sys.exit(ended.code)
