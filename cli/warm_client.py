"""``analyst run`` handed to a warm runner (cli/warm_runner.py), when one is ready for it.

A fresh ``analyst run`` spends seconds importing prefect, anthropic, pandas, pandera and polars
before Claude's first request; a runner that imported them once forks a copy of itself per run.
The command's own process stays the one the user sees: its stdin, stdout and stderr are passed
to the forked run (SCM_RIGHTS), signals it gets are passed on, and it exits with the run's code.
If the command is killed outright, the runner kills the run (cli/warm_runner.py).

A runner serves only the environment it was started with: its address is a hash of this
project's home (the local server's), the interpreter, the installed packages' and this package's
files, and every environment variable except the few that change between calls in one shell and
those named like secrets (read when a client is made, never at import). A different environment,
an edited source file or an upgraded package finds no runner, runs in its own process as before,
and starts a runner for the next run. Used only with the local Prefect server (PREFECT_API_URL
unset), on Linux; ``ANALYST_WARM_RUNNER=0`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

SWITCH = "ANALYST_WARM_RUNNER"
# Set by the shell from one call to the next, or by the terminal: nothing reads them at import.
VOLATILE = frozenset({"_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES", "TERM_SESSION_ID", "WINDOWID"})
PACKAGES = ("cli", "flows", "tasks", "deployments")
ROOT = Path(__file__).resolve().parents[1]
HEADER = struct.Struct("!I")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

# The environment `analyst` started with, before the CLI adds Prefect's settings to it: what a
# runner started from this process must be given, so that the next call finds it.
started_with: dict[str, str] | None = None


def enabled(env: dict[str, str]) -> bool:
    return (sys.platform == "linux" and not env.get("PREFECT_API_URL", "").strip()
            and env.get(SWITCH, "1").strip().lower() not in {"0", "false", "no", "off"})


def _code_signature(digest: hashlib._Hash, root: Path = ROOT) -> None:
    for package in PACKAGES:
        for folder, dirs, files in os.walk(root / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if name.endswith(".py"):
                    stat = os.stat(os.path.join(folder, name))
                    digest.update(f"{folder}/{name}:{stat.st_mtime_ns}:{stat.st_size}\0".encode())
    # Installing, upgrading or removing a distribution changes its site-packages folder's entries.
    import sysconfig

    for key in ("purelib", "platlib"):
        digest.update(f"{key}:{os.stat(sysconfig.get_path(key)).st_mtime_ns}\0".encode())


def address(env: dict[str, str]) -> str:
    """The runner's abstract unix socket (Linux; no file to leave behind, none of the sandbox's:
    it has its own network namespace)."""
    from cli.local_server import paths
    from tasks.secrets import SECRET_NAME

    digest = hashlib.sha256()
    digest.update(f"{paths(env).home}\0{sys.executable}\0".encode())
    for key in sorted(env):
        if key not in VOLATILE and key != SWITCH and not SECRET_NAME.search(key):
            digest.update(f"{key}={env[key]}\0".encode())
    _code_signature(digest)
    return f"\0analyst-runner-{digest.hexdigest()[:32]}"


def run_in_runner(argv: list[str]) -> int | None:
    """The exit code of ``analyst run ...`` run by a warm runner, or None to run it here."""
    global started_with
    started_with = dict(os.environ)
    if not argv or argv[0] != "run" or "--help" in argv or not enabled(started_with):
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(address(started_with))
        umask = os.umask(0)
        os.umask(umask)
        request = json.dumps({"argv": argv, "cwd": os.getcwd(), "env": started_with, "umask": umask}).encode()
        socket.send_fds(conn, [HEADER.pack(len(request))], [0, 1, 2])
        conn.sendall(request)
        replies = conn.makefile("rb")
        started = replies.readline().split()
    except OSError:
        conn.close()
        return None  # no runner, or it went away before the run began: run it here
    if len(started) != 2 or started[0] != b"pid":
        conn.close()
        return None
    pid = int(started[1])
    for sig in FORWARDED:  # Ctrl-C reaches this process's group only; the run is in the runner's
        signal.signal(sig, lambda number, _frame: _pass_on(pid, number))
    ended = replies.readline().split()
    conn.close()
    if len(ended) != 2 or ended[0] != b"exit":
        print("analyst: the warm runner stopped before the run ended; see its log, runner.log, next to the "
              "local server's (`analyst server status`)", file=sys.stderr)
        return 1
    code = int(ended[1])
    if code < 0:  # killed by a signal: end the same way
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


def _pass_on(pid: int, number: int) -> None:
    try:
        os.kill(pid, number)
    except ProcessLookupError:
        pass


def ready(env: dict[str, str]) -> bool:
    """A runner serves this environment (one that is still importing does not take runs yet)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(address(env))
        except OSError:
            return False
    return True


def start_runner() -> None:
    """Start a runner for the next ``analyst run`` of this environment, if there is none."""
    if started_with is None or not enabled(started_with) or ready(started_with):
        return  # not the console script (tests' in-process runs), turned off, or there is one
    from cli.local_server import paths

    with open(paths(started_with).home / "runner.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "cli.warm_runner"], env=started_with, stdin=subprocess.DEVNULL,
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
