"""Background processes for the system tests: started in their own session with a log file, stopped
as a whole process group, and the few /proc probes the tests assert with."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Prefect settings or proxies (a test may have pointed PREFECT_API_URL
    elsewhere; a proxy would swallow loopback calls), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k not in PROXY_VARS}
    env.update(DO_NOT_TRACK="1", NO_PROXY="127.0.0.1,localhost", **extra)
    return env


def start(argv: Sequence[str], env: Mapping[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """Start ``argv`` in a new session (so stop() reaches its children too), output to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGTERM the process group (the graceful shutdown of Prefect's servers and workers), SIGKILL it
    if still there after ``timeout``; returns the exit status."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    raise RuntimeError(f"process {proc.pid} ({proc.args!r}) survived SIGKILL")


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str, timeout: float) -> None:
    """Poll ``ready`` until true; fail with the log's tail if ``proc`` exits or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s:\n{tail(log)}")
        time.sleep(0.2)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains ``text``: (pid, command line). A bwrap sandbox names
    its work folder in its arguments, so this finds sandboxes even once re-parented to init."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # exited meanwhile
        if text in cmdline and state != "Z":
            found.append((int(entry.name), cmdline))
    return found


def descendants(pid: int) -> list[tuple[int, str]]:
    """The live processes below ``pid``: (pid, command line)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or exited meanwhile
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        try:
            found.append((child, (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()))
        except OSError:
            continue
        todo.extend(children.get(child, []))
    return found
