"""The local Prefect server that `analyst run` uses when PREFECT_API_URL is not set.

Prefect's temporary ("ephemeral") server costs 13-20 s per run; a server started once in the
background and reused costs ~1.6 s for a 10-task flow. So the default is one detached
`prefect server start` per project, on SQLite under ``$ANALYST_HOME/prefect`` (default
``./.analyst/prefect``), on 127.0.0.1:4200 or the next free port (``ANALYST_SERVER_PORT`` picks
another preferred port). Its pid and port live in ``server.json`` there; ``server.lock``
(fcntl.flock) keeps two processes from starting two servers.

Prefect reads its settings once, at import (``prefect.context.GLOBAL_SETTINGS_CONTEXT``): setting
``os.environ["PREFECT_API_URL"]`` afterwards changes nothing. ``use_api_url`` sets the environment
(for this process and its children) and then calls ``prefect.context.refresh_global_settings_context()``
(prefect 3.9), and checks that ``get_current_settings().api.url`` is the new URL.

Why not Prefect's own ``prefect server start --background`` (3.9): it was tried. It pipes the
server's output to the CLI process that started it, which exits at once, so the server keeps no log;
it imports the server twice, so a cold start takes longer; and with it the test that restarts the
server mid-run (tests/faults/test_orchestration.py) failed in 2 of 3 full runs: the run's client did
not reach the restarted server again (cause not found). Here the server's output goes to server.log.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import AnalystError
from tasks.secrets import SECRET_NAME

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
PORT_SEARCH = 20  # try DEFAULT_PORT .. DEFAULT_PORT + 19
START_TIMEOUT = 120.0  # a cold start took 40-57 s on 2 busy cores
STOP_TIMEOUT = 10.0


class ServerError(AnalystError):
    """The local Prefect server cannot be started, reached or stopped."""


@dataclass(frozen=True)
class Paths:
    home: Path  # PREFECT_HOME of the server
    state: Path
    lock: Path
    log: Path
    db: Path


def paths(env: Mapping[str, str] = os.environ) -> Paths:
    base = Path(env.get("ANALYST_HOME") or Path.cwd() / ".analyst")
    home = base.expanduser().resolve() / "prefect"
    return Paths(home, home / "server.json", home / "server.lock", home / "server.log", home / "prefect.db")


def preferred_port() -> int:
    value = os.environ.get("ANALYST_SERVER_PORT")
    try:
        return int(value) if value else DEFAULT_PORT
    except ValueError:
        raise ServerError(f"ANALYST_SERVER_PORT must be a port number, not {value!r}") from None


@dataclass(frozen=True)
class ServerStatus:
    state: str  # "running" | "unhealthy" (process alive, not answering) | "stale" | "stopped"
    url: str | None  # API URL, ends with /api
    pid: int | None
    port: int | None
    db: Path
    log: Path
    note: str = ""  # e.g. "port 4200 is held by another program"

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def ui_url(self) -> str | None:
        return self.url.removesuffix("/api") if self.url else None


def api_url_for(port: int) -> str:
    return f"http://{HOST}:{port}/api"


# --- process and port probes -------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:  # reap it if it is our own child that has exited (else it lingers as a zombie)
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but is gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _is_our_server(pid: int, port: int) -> bool:
    """The pid still belongs to a `prefect server start --port <port>` (not a reused pid)."""
    if not _pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return True  # no /proc (macOS): trust the pid
    return any("prefect" in a for a in argv) and "server" in argv and str(port) in argv


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does; ignores TIME_WAIT
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with _NO_PROXY.open(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


# --- state file and lock -----------------------------------------------------------------


def _read_state(p: Paths) -> dict | None:
    try:
        data = json.loads(p.state.read_text())
        return data if isinstance(data.get("pid"), int) and isinstance(data.get("port"), int) else None
    except (OSError, ValueError, AttributeError):
        return None


def _write_state(p: Paths, data: dict) -> None:
    tmp = p.state.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(p.state)


@contextmanager
def _locked(p: Paths, timeout: float = START_TIMEOUT + STOP_TIMEOUT + 15) -> Iterator[None]:
    p.home.mkdir(parents=True, exist_ok=True)
    with open(p.lock, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError(f"another process holds {p.lock} (starting or stopping the server)") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- status / start / stop ---------------------------------------------------------------


def status() -> ServerStatus:
    p = paths()
    st = _read_state(p)
    if st is None:
        port = preferred_port()
        note = "" if _port_free(port) else (f"port {port} is held by another program; a new server would use "
                                            "the next free port")
        return ServerStatus("stopped", None, None, None, p.db, p.log, note)
    pid, port = st["pid"], st["port"]
    url = api_url_for(port)
    if _is_our_server(pid, port):
        state = "running" if healthy(url) else "unhealthy"
        return ServerStatus(state, url, pid, port, p.db, p.log)
    note = f"state file {p.state} names pid {pid}, which is gone"
    if not _port_free(port):
        note += f"; port {port} is held by another program"
    return ServerStatus("stale", url, pid, port, p.db, p.log, note)


def choose_port() -> int:
    """The preferred port (4200 or ANALYST_SERVER_PORT), or the next free one if another program holds it."""
    first = preferred_port()
    port = next((n for n in range(first, first + PORT_SEARCH) if _port_free(n)), None)
    if port is None:
        raise ServerError(f"ports {first}-{first + PORT_SEARCH - 1} on {HOST} are all in use; set ANALYST_SERVER_PORT")
    return port


def _server_env(p: Paths, port: int) -> dict[str, str]:
    # The server needs none of the caller's API keys, and it outlives the CLI that started it.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_", "DO_NOT_TRACK")) and not SECRET_NAME.search(k)}
    url = api_url_for(port)
    env.update(
        PREFECT_HOME=str(p.home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{p.db}",
        PREFECT_SERVER_API_HOST=HOST,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_API_URL=url,  # the server's own URL, never a remote one from the caller's environment
        PREFECT_UI_API_URL=url,
        PREFECT_SERVER_UI_ENABLED="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",  # no internet: its telemetry call fails and slows start-up
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
        DO_NOT_TRACK="1",
    )
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(timeout: float = START_TIMEOUT) -> ServerStatus:
    """Start the local server unless it runs already; wait until /api/health answers."""
    p = paths()
    with _locked(p):
        return _start_locked(p, timeout)


def _start_locked(p: Paths, timeout: float) -> ServerStatus:
    current = status()
    if current.running:
        return current
    if current.state == "unhealthy":  # alive but not answering: give it the same time a start gets
        assert current.pid is not None and current.port is not None  # an unhealthy server has both
        _wait_healthy(p, current.pid, current.port, timeout, proc=None)
        return status()
    p.state.unlink(missing_ok=True)  # stale or absent
    port = choose_port()
    with open(p.log, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} analyst starts prefect server on port {port}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(port)],
            env=_server_env(p, port), cwd=p.home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI; stop() signals its process group
        )
    _write_state(p, {"pid": proc.pid, "port": port, "url": api_url_for(port), "started_at": time.time()})
    _wait_healthy(p, proc.pid, port, timeout, proc)
    return status()


def _wait_healthy(p: Paths, pid: int, port: int, timeout: float, proc: subprocess.Popen | None) -> None:
    url, deadline = api_url_for(port), time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url, timeout=1.0):
            return
        if (proc.poll() is not None) if proc else not _pid_alive(pid):
            p.state.unlink(missing_ok=True)
            raise ServerError(f"the Prefect server exited while starting; see {p.log}:\n{_tail(p.log)}")
        time.sleep(0.1)
    if proc is not None:
        _terminate(pid)
        p.state.unlink(missing_ok=True)
    raise ServerError(
        f"the Prefect server (pid {pid}) did not answer {url}/health within {timeout:.0f} s; see {p.log}"
        + ("" if proc else "; run `analyst server stop` and try again")
    )


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the server's process group, SIGKILL it if still there after `timeout`."""
    def signal_group(sig: int) -> None:
        try:
            os.killpg(pid, sig) if os.getpgid(pid) == pid else os.kill(pid, sig)
        except ProcessLookupError:
            pass

    signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    signal_group(signal.SIGKILL)
    for _ in range(50):
        if not _pid_alive(pid):
            return
        time.sleep(0.1)
    raise ServerError(f"the Prefect server (pid {pid}) did not exit after SIGKILL")


def stop(timeout: float = STOP_TIMEOUT) -> ServerStatus:
    """Stop the local server if it runs; remove its state file. Safe to call when stopped."""
    p = paths()
    with _locked(p):
        before = status()
        if before.state in ("running", "unhealthy"):
            assert before.pid is not None  # a server that runs has its process
            _terminate(before.pid, timeout)
        p.state.unlink(missing_ok=True)
        return before


# --- what `analyst run` calls ------------------------------------------------------------


def ensure_server(timeout: float = START_TIMEOUT) -> str:
    """The API URL to use: PREFECT_API_URL if set, else the local server's (started if needed)."""
    if url := os.environ.get("PREFECT_API_URL", "").strip():
        return url
    current = status()  # fast path, no lock: a few ms when it runs
    if current.running and current.url:
        return current.url
    started = start(timeout)
    assert started.url is not None  # start() returns a running server or raises
    return started.url


def use_api_url(api_url: str, *, local: bool = False) -> None:
    """Point this process's Prefect (and its child processes) at `api_url`, before any flow runs."""
    os.environ["PREFECT_API_URL"] = api_url
    # Fail loudly rather than fall back to a slow temporary server if the URL is ever lost.
    os.environ.setdefault("PREFECT_SERVER_ALLOW_EPHEMERAL_MODE", "false")
    if local:
        os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect SDK telemetry: no internet here anyway
        proxies = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
        if any(os.environ.get(k) for k in proxies):
            no_proxy = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
            os.environ["NO_PROXY"] = ",".join(x for x in (no_proxy, HOST, "localhost") if x)
    if "prefect" not in sys.modules:
        return  # prefect will read the environment when it is imported
    import prefect.context
    from prefect.settings import get_current_settings

    prefect.context.refresh_global_settings_context()
    if get_current_settings().api.url != api_url:
        raise ServerError(
            f"Prefect did not pick up PREFECT_API_URL={api_url} (still {get_current_settings().api.url!r}); "
            "call use_api_url() outside any prefect settings context"
        )


def configure_prefect(timeout: float = START_TIMEOUT, *, wait: bool = True) -> str:
    """ensure_server() + use_api_url() + the server's crash detection (``flows/crash_detection.py``):
    call once before running or serving flows; returns the API URL.

    ``wait=False`` (`analyst run`) sets up crash detection in a background thread: its round trips
    need not delay the run's start, and the automation only acts on a run's heartbeats, minutes later."""
    from flows.crash_detection import ensure_crash_detection  # imports prefect: here, not in a thread
    from tasks.prefect.background import in_background

    local = not os.environ.get("PREFECT_API_URL", "").strip()
    url = ensure_server(timeout)
    use_api_url(url, local=local)
    if wait:
        ensure_crash_detection()
    else:
        in_background(ensure_crash_detection, name="crash-detection")
    return url


def flow_run_url(api_url: str, flow_run_id: object) -> str:
    """The UI page of a flow run.

    Self-hosted 3.9 serves the default (V2) UI under /v2 and the V1 UI at /, both with the route
    runs/flow-run/<id>; Prefect Cloud API URLs map to app.prefect.cloud. PREFECT_UI_URL wins if set.
    """
    api_url = api_url.rstrip("/")
    if ui := os.environ.get("PREFECT_UI_URL", "").strip().rstrip("/"):
        return f"{ui}/runs/flow-run/{flow_run_id}"
    if api_url.startswith("https://api.prefect.cloud/api/accounts/"):
        rest = api_url.removeprefix("https://api.prefect.cloud/api/")
        rest = rest.replace("accounts/", "account/", 1).replace("/workspaces/", "/workspace/", 1)
        return f"https://app.prefect.cloud/{rest}/runs/flow-run/{flow_run_id}"
    return f"{api_url.removesuffix('/api')}/v2/runs/flow-run/{flow_run_id}"
