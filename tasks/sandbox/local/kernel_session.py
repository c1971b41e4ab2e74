"""One ipykernel process driven over ZeroMQ IPC sockets: start, execute, interrupt, kill.

The kernel runs in other namespaces, so it sees its socket folder at another path than we do
(``ipc_inside`` vs ``ipc_host``); we write the connection file with the inside path for the kernel
and keep the host-side copy in memory only.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from tasks.errors import SandboxError
from tasks.sandbox.local.process_tree import kill_tree

PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
SOCKET_PREFIX = "k"

# bwrap --die-with-parent uses PR_SET_PDEATHSIG, which fires when the *thread* that forked it exits.
# Prefect runs tasks on worker threads that come and go, so every kernel is forked from this one
# long-lived thread instead: the sandbox then dies with the process, not with a task's thread.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")


@dataclass
class Launch:
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    ipc_host: Path
    ipc_inside: str
    log_path: Path
    preexec_fn: Callable[[], None] | None = None
    pass_fds: tuple[int, ...] = ()
    owner: tuple[int, int] | None = None  # the (uid, gid) the kernel runs as, when not ours


@dataclass
class Outcome:
    """How one execute_request ended. ``status`` is the kernel's ("ok", "error", "aborted") or ours:
    "hung" (did not stop when interrupted) or "died" (the process exited)."""

    status: str
    content: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


class KernelSession:
    def __init__(self, launch: Launch):
        self.launch = launch
        self.proc: subprocess.Popen[bytes] | None = None
        self.client: BlockingKernelClient | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        launch = self.launch
        for stale in launch.ipc_host.glob(f"{SOCKET_PREFIX}-*"):
            stale.unlink(missing_ok=True)
        key = secrets.token_hex(32).encode()
        _, info = write_connection_file(
            str(launch.ipc_host / "kernel.json"), ip=f"{launch.ipc_inside}/{SOCKET_PREFIX}",
            transport="ipc", key=key, **PORTS,
        )
        if launch.owner is not None:
            os.chown(launch.ipc_host / "kernel.json", *launch.owner)
        host_info = dict(info, ip=str(launch.ipc_host / SOCKET_PREFIX))
        with open(launch.log_path, "ab") as log:
            self.proc = _SPAWNER.submit(
                subprocess.Popen, launch.cmd, env=launch.env, cwd=launch.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=launch.preexec_fn,
                pass_fds=launch.pass_fds,
            ).result()
        try:
            self._connect(host_info, time.monotonic() + timeout)
        except BaseException:
            self.kill()  # a kernel that never became ready must not linger until teardown
            raise

    def _connect(self, host_info: dict[str, Any], deadline: float) -> None:
        launch = self.launch
        # Connect only once the kernel has bound its sockets: zmq would otherwise retry every 100 ms.
        needed = [launch.ipc_host / f"{SOCKET_PREFIX}-{PORTS[p]}" for p in ("shell_port", "iopub_port", "control_port")]
        while not all(p.exists() for p in needed):
            self._check_starting(deadline)
            time.sleep(0.005)
        client = BlockingKernelClient()
        client.load_connection_info(host_info)
        client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=True)
        self.client = client
        self._handshake(deadline)

    def _check_starting(self, deadline: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise SandboxError(
                f"the sandbox's Python kernel exited during start-up (exit code {self.proc.returncode}). "
                f"Its log ends with:\n{self.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise SandboxError(f"the sandbox's Python kernel did not answer within its start-up time. "
                               f"Its log ends with:\n{self.log_tail()}")

    def _handshake(self, deadline: float) -> None:
        """Ready = a kernel_info reply arrived *and* iopub delivers: a subscriber that joins late
        silently misses messages, which would lose the first cell's output."""
        client = self.client
        assert client is not None
        while True:
            self._check_starting(deadline)
            msg_id = client.kernel_info()
            def answers(m: dict[str, Any], msg_id: str = msg_id) -> bool:
                return m["parent_header"].get("msg_id") == msg_id

            if self._wait(client.shell_channel, answers, 0.5):
                if self._wait(client.iopub_channel, lambda m: True, 0.2):
                    break
        time.sleep(0.02)
        for channel in (client.shell_channel, client.iopub_channel):
            _drain(channel)

    def _wait(self, channel: Any, match: Callable[[dict[str, Any]], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            if channel.socket.poll(int(left * 1000) + 1):
                if match(channel.get_msg(timeout=0)):
                    return True
        return False

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client = None
        proc, self.proc = self.proc, None
        if proc is not None:
            kill_tree(proc)

    def log_tail(self, chars: int = 2000) -> str:
        try:
            data = self.launch.log_path.read_bytes()[-chars:]
        except OSError:
            return "(no log)"
        return data.decode("utf-8", "replace").strip() or "(empty)"

    # -- execution -------------------------------------------------------------------------

    def send_execute(self, code: str, *, silent: bool = False) -> str:
        assert self.client is not None
        return self.client.execute(code, silent=silent, store_history=not silent, allow_stdin=False,
                                   stop_on_error=False)

    def interrupt(self) -> None:
        # Message-mode interrupt: the kernel signals itself, which works across the PID namespace.
        assert self.client is not None
        self.client.control_channel.send(self.client.session.msg("interrupt_request", {}))

    def wait_reply(self, msg_id: str, timeout: float) -> Outcome:
        """Wait for a request's reply without collecting its output (used for the warm-up)."""
        return self.collect(msg_id, timeout, on_output=None, interrupt_grace=0.0)

    def collect(
        self,
        msg_id: str,
        timeout: float,
        on_output: Callable[[dict[str, Any]], None] | None,
        interrupt_grace: float = 3.0,
        idle_grace: float = 2.0,
    ) -> Outcome:
        client = self.client
        assert client is not None
        shell, iopub, control = client.shell_channel, client.iopub_channel, client.control_channel
        poller = zmq.Poller()
        for channel in (shell, iopub, control):
            poller.register(channel.socket, zmq.POLLIN)
        deadline = time.monotonic() + timeout
        reply: dict[str, Any] | None = None
        idle = interrupted = False
        while not (reply is not None and idle):
            now = time.monotonic()
            if now >= deadline:
                if reply is not None:
                    break  # the reply came but its idle status got lost: output is complete enough
                if not self.alive:
                    return Outcome("died", interrupted=interrupted)
                if interrupted or interrupt_grace <= 0:
                    return Outcome("hung", interrupted=interrupted)
                self.interrupt()
                interrupted = True
                deadline = now + interrupt_grace
                continue
            ready = dict(poller.poll(min(100, int((deadline - now) * 1000) + 1)))
            if not ready and not self.alive:
                return Outcome("died", interrupted=interrupted)
            if iopub.socket in ready:
                for msg in _drain(iopub):
                    if msg["parent_header"].get("msg_id") != msg_id:
                        continue
                    if msg["msg_type"] == "status":
                        idle = idle or msg["content"].get("execution_state") == "idle"
                    elif on_output is not None:
                        on_output(msg)
            if shell.socket in ready:
                for msg in _drain(shell):
                    if msg["parent_header"].get("msg_id") == msg_id:
                        reply = msg
                        deadline = min(deadline, time.monotonic() + idle_grace)
            if control.socket in ready:
                _drain(control)
        assert reply is not None
        return Outcome(reply["content"].get("status", "error"), reply["content"], interrupted)


def _drain(channel: Any, limit: int = 500) -> list[dict[str, Any]]:
    # Bounded, so a cell that floods output cannot keep us from checking the deadline.
    msgs: list[dict[str, Any]] = []
    while len(msgs) < limit and channel.socket.poll(0):
        msgs.append(channel.get_msg(timeout=0))
    return msgs
