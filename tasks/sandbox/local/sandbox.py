"""The local provider: a stateful ipykernel confined by bubblewrap on this machine.

Host layout, two temporary folders per sandbox:

* the work folder (under ``work_root`` if given): ``data/`` and ``outputs/``, seen inside as
  ``/sandbox`` (the kernel's working directory), so code and tracebacks always say ``/sandbox/...``;
* a short run folder under the temp dir: the kernel's log, its passwd/group files and ``ipc/`` (the
  Unix sockets, seen inside as ``/run/kernel``). Kept apart from the work folder so a deep
  ``work_root`` cannot push a socket path past the ~107-byte Unix limit, and so the analysis
  never sees the sockets among its files.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox.base import (DATA_DIR, DEFAULT_WARM_IMPORTS, OUTPUTS_DIR, THREAD_VARS, Chart, CodeError,
                                ExecutionResult, Sandbox)
from tasks.sandbox.local import pycache, work_folder
from tasks.sandbox.local.bubblewrap import (IPC_INSIDE, PYCACHE_INSIDE, Staging, build_command, find_bwrap,
                                            require_userns, run_as, write_identity_files)
from tasks.sandbox.local.disk_quota import DiskWatch
from tasks.sandbox.local.kernel_session import KernelSession, Launch
from tasks.sandbox.local.limits import (MAX_PROCESSES, CpuCgroup, MemoryCgroup, PidsCgroup, describe_bytes,
                                        make_preexec, ram_limit)
from tasks.sandbox.local.output_limit import CUT_FIELD, kernel_setup_code
from tasks.sandbox.local.process_tree import descendants
from tasks.sandbox.local.seccomp import compiled_filter, filter_fd
from tasks.sandbox.notes import STATE_GONE, timed_out_interrupted, timed_out_restarted
from tasks.sandbox.output_buffer import OutputBuffer
from tasks.text_safety import printable

# The warm imports run in the background right after start-up; the first run waits for them, up to
# this and outside its own timeout, instead of paying ~2 s itself.
START_TIMEOUT_S = 30.0
INTERRUPT_GRACE_S = 2.0
MAX_SOCKET_PATH = 100
# The local kernel runs this project's own environment, polars (Rust threads) included.
LOCAL_THREAD_VARS = (*THREAD_VARS, "VECLIB_MAXIMUM_THREADS", "POLARS_MAX_THREADS", "RAYON_NUM_THREADS")
NO_ISOLATION_WARNING = (
    "sandbox isolation is off (isolation: none): this code ran directly on the host, with access to "
    "its files, network and environment"
)


class LocalSandbox(Sandbox):
    def __init__(self, config: SandboxConfig, work_root: Path | None = None, *,
                 warm_imports: tuple[str, ...] = DEFAULT_WARM_IMPORTS):
        self.config = config
        self.work_root = Path(work_root) if work_root is not None else None
        self.warm_imports = tuple(warm_imports)
        self._work_dir: Path | None = None
        self._run_dir: Path | None = None
        self._stage_dir: Path | None = None
        self._session: KernelSession | None = None
        self._cgroup: MemoryCgroup | None = None
        self._cpu_cgroup: CpuCgroup | None = None
        self._pids_cgroup: PidsCgroup | None = None
        self._seccomp_fd: int | None = None
        self._run_as: tuple[int, int] | None = None
        self._disk: DiskWatch | None = None
        self._cell_running = False
        self._warmup_id: str | None = None
        self._figures = 0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def isolated(self) -> bool:
        return self.config.isolation != "none"

    @property
    def work_dir(self) -> Path:
        """The host folder holding data/ and outputs/ (``/sandbox`` inside)."""
        if self._work_dir is None:
            raise SandboxError("the sandbox is not provisioned")
        return self._work_dir

    # -- provision / teardown ----------------------------------------------------------------

    def provision(self) -> None:
        if self._closed:
            raise SandboxError("this sandbox was torn down; create a new one")
        if self._session is not None:
            return
        bwrap = None
        if self.isolated:  # refuse before creating anything
            bwrap = find_bwrap()
            require_userns(bwrap)
            compiled_filter()
            self._run_as = run_as()
        try:
            self._provision(bwrap)
        except BaseException:
            self._release()  # leave nothing behind, so provision can simply be retried
            raise

    def _provision(self, bwrap: str | None) -> None:
        if self.work_root is not None:
            self.work_root.mkdir(parents=True, exist_ok=True)
        self._work_dir = Path(tempfile.mkdtemp(prefix="sandbox-", dir=self.work_root))
        for sub in (DATA_DIR, OUTPUTS_DIR):
            (self._work_dir / sub).mkdir()
        self._run_dir = Path(tempfile.mkdtemp(prefix="analyst-k-"))
        ipc = self._run_dir / "ipc"
        ipc.mkdir(mode=0o700)
        (self._run_dir / "kernel.log").touch(mode=0o600)
        if self._run_as is not None:  # the sandbox's uid owns these and nothing else of ours
            # Under /tmp itself: TMPDIR and the work root may sit in folders that uid cannot search.
            self._stage_dir = Path(tempfile.mkdtemp(prefix="analyst-s-", dir="/tmp"))
            self._stage_dir.chmod(0o711)
            for folder in (self._work_dir, self._work_dir / DATA_DIR, self._work_dir / OUTPUTS_DIR, ipc):
                os.chown(folder, *self._run_as)
        if len(f"{ipc}/k-1") > MAX_SOCKET_PATH:
            raise SandboxError(f"the temp folder path {tempfile.gettempdir()!r} is too long for the kernel's "
                               "Unix sockets; set TMPDIR to a short folder such as /tmp")
        self._cgroup = MemoryCgroup.create(ram_limit(self.config.memory_bytes))
        self._cpu_cgroup = CpuCgroup.create(self.config.cpus)
        self._pids_cgroup = PidsCgroup.create(MAX_PROCESSES)
        self._session = KernelSession(self._launch(bwrap, ipc))
        self._start_kernel()
        self._disk = DiskWatch([self._work_dir, ipc], self.config.file_bytes, self._on_disk_over,
                               lambda: self._cell_running)
        self._disk.start()

    def _launch(self, bwrap: str | None, ipc: Path) -> Launch:
        assert self._work_dir is not None and self._run_dir is not None
        home = "/tmp" if bwrap else str(self._run_dir / "home")
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": home, "USER": "sandbox", "LANG": "C.UTF-8",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "MPLCONFIGDIR": f"{home}/.matplotlib", "IPYTHONDIR": f"{home}/.ipython",
            # Few malloc arenas: each reserves 64 MiB of address space, which RLIMIT_AS counts.
            "MALLOC_ARENA_MAX": "2", "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            **{var: str(self.config.cpus) for var in LOCAL_THREAD_VARS},
        }
        if sys.prefix != sys.base_prefix:
            env["VIRTUAL_ENV"] = sys.prefix
        bytecode = pycache.ready_cache()
        if bytecode is not None:
            env["PYTHONPYCACHEPREFIX"] = PYCACHE_INSIDE if bwrap else str(bytecode)
        ipc_inside = IPC_INSIDE if bwrap else str(ipc)
        argv = self._kernel_argv(f"{ipc_inside}/kernel.json")
        if bwrap is not None:
            self._seccomp_fd = filter_fd()
        preexec = make_preexec(memory_bytes=self.config.memory_bytes, cpus=self.config.cpus, cgroup=self._cgroup,
                               cpu_cgroup=self._cpu_cgroup, pids_cgroup=self._pids_cgroup,
                               file_bytes=self.config.file_bytes, run_as=self._run_as, rewind_fd=self._seccomp_fd)
        log_path = self._run_dir / "kernel.log"
        if bwrap is None:
            Path(home).mkdir()
            env["JPY_PARENT_PID"] = str(os.getpid())  # without bwrap, ipykernel's own parent watch
            return Launch(argv, env, self._work_dir, ipc, ipc_inside, log_path, preexec)
        assert self._seccomp_fd is not None  # set above whenever bwrap runs
        cmd = build_command(
            bwrap=bwrap, work_dir=self._work_dir, ipc_dir=ipc, identity_files=write_identity_files(self._run_dir),
            env=env, tmp_bytes=self.config.memory_bytes, argv=argv, seccomp_fd=self._seccomp_fd,
            stage=Staging(self._stage_dir, self._run_as),
            pycache=bytecode,
        )
        # bwrap's own environment is readable inside (/proc/1/environ): give it nothing at all.
        return Launch(cmd, {}, Path("/"), ipc, ipc_inside, log_path, preexec,
                      pass_fds=(self._seccomp_fd,), owner=self._run_as)

    def _kernel_argv(self, connection_file: str) -> list[str]:
        return [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file,
                "--HistoryManager.enabled=False"]

    def _start_kernel(self, warm: bool = True) -> None:
        assert self._session is not None
        self._session.start(START_TIMEOUT_S)
        code = kernel_setup_code(self.config.max_output_chars)
        if warm and self.warm_imports:
            code += "\n".join(f"try:\n    __import__({m!r})\nexcept Exception:\n    pass" for m in self.warm_imports)
        self._warmup_id = self._session.send_execute(code, silent=True)

    def _restart(self, warm: bool = True) -> None:
        if self._closed or self._session is None:
            raise SandboxError("the sandbox was torn down")
        self._session.kill()
        for cgroup in (self._cgroup, self._pids_cgroup):
            if cgroup is not None:
                cgroup.kill_all()
        if self._disk is not None:
            self._disk.rebase()
        self._start_kernel(warm)

    def teardown(self) -> None:
        self._closed = True
        self._release()

    def _release(self) -> None:
        disk, self._disk = self._disk, None
        if disk is not None:
            disk.stop()
        session, self._session = self._session, None
        if session is not None:
            session.kill()
        for cgroup in (self._cgroup, self._cpu_cgroup, self._pids_cgroup):
            if cgroup is not None:
                cgroup.remove()
        self._cgroup = self._cpu_cgroup = self._pids_cgroup = None
        if self._seccomp_fd is not None:
            os.close(self._seccomp_fd)
            self._seccomp_fd = None
        for folder in (self._work_dir, self._run_dir, self._stage_dir):
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        self._work_dir = self._run_dir = self._stage_dir = None

    # -- upload ---------------------------------------------------------------------------

    def upload(self, local_path: Path, name: str) -> str:
        uploaded = work_folder.upload(self.work_dir, Path(local_path), name)
        added = (self.work_dir / uploaded).stat().st_blocks * 512  # the datasets do not count toward the quota
        if self._disk is not None:
            self._disk.allowed += added
        return uploaded

    # -- run ------------------------------------------------------------------------------

    def run_code(self, code: str, timeout: float | None = None) -> ExecutionResult:
        with self._lock:
            try:
                return self._run(code, self.config.timeout if timeout is None else timeout)
            except SandboxError:
                raise
            except Exception as exc:
                if self._closed:
                    raise SandboxError("the sandbox was torn down during the run") from exc
                raise

    def _run(self, code: str, timeout: float) -> ExecutionResult:
        if self._session is None:
            raise SandboxError("the sandbox is not provisioned" if not self._closed else "the sandbox was torn down")
        result = ExecutionResult()
        if not self.isolated:
            result.warnings.append(NO_ISOLATION_WARNING)
        over_between = self._disk.take_exceeded() if self._disk else False
        if not self._session.alive:  # it died between runs (e.g. a background thread crashed it)
            self._restart()
            result.state_reset = True
            result.warnings.append(
                (f"the files under /sandbox grew past the sandbox's disk quota (sandbox.disk, "
                 f"{describe_bytes(self.config.file_bytes)}) while no code ran, so " if over_between else "")
                + f"the Python session had died since the last run and was restarted: {STATE_GONE}")
        self._await_setup()
        outputs = self.work_dir / OUTPUTS_DIR
        before = work_folder.snapshot(outputs)
        out, err = OutputBuffer(self.config.max_output_chars), OutputBuffer(self.config.max_output_chars)
        figures: list[Chart] = []

        def on_output(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                buffer = err if content.get("name") == "stderr" else out
                buffer.write(content.get("text", ""))
                buffer.cut += int(content.get(CUT_FIELD) or 0)  # what the kernel already dropped
            elif kind in ("display_data", "execute_result"):
                data = content.get("data", {})
                if "image/png" in data:
                    self._figures += 1
                    figures.append(Chart(f"figure-{self._figures}.png", base64.b64decode(data["image/png"]), "figure"))
                elif "text/plain" in data:
                    out.write(str(data["text/plain"]) + "\n")

        oom_kills = self._cgroup.oom_kills() if self._cgroup else 0
        fork_refusals = self._pids_cgroup.refusals() if self._pids_cgroup else 0
        started = time.perf_counter()
        self._cell_running = True
        try:
            msg_id = self._session.send_execute(code)
            outcome = self._session.collect(msg_id, timeout, on_output, interrupt_grace=INTERRUPT_GRACE_S)
        finally:
            self._cell_running = False
        limit, ram = describe_bytes(self.config.memory_bytes), describe_bytes(ram_limit(self.config.memory_bytes))
        if outcome.status == "died":
            oom = self._cgroup is not None and self._cgroup.oom_kills() > oom_kills
            exit_code = self._session.proc.returncode if self._session.proc else None
            self._restart()
            result.state_reset = True
            result.error = (
                CodeError("MemoryLimitKill", f"the sandbox's processes together (subprocesses and files in /tmp "
                                             f"included) used more RAM than its limit of {ram} (sandbox.memory, "
                                             f"{limit}, plus room for the interpreter), so the system killed the "
                                             f"Python session, which was restarted: {STATE_GONE}", "")
                if oom else
                CodeError("KernelDied", f"the Python session exited unexpectedly (exit code {exit_code}) and was "
                                        f"restarted: {STATE_GONE}", "")
            )
        elif outcome.status == "hung":
            self._restart()
            result.timed_out = result.state_reset = True
            result.warnings.append(timed_out_restarted(timeout))
        elif outcome.interrupted and outcome.status != "ok":
            result.timed_out = True
            result.warnings.append(timed_out_interrupted(timeout))
        elif outcome.status == "error":
            result.error = self._code_error(outcome.content, limit)
        if self._disk is not None and self._disk.take_exceeded():
            stopped = (f"the Python session was restarted: {STATE_GONE}" if result.state_reset
                       else "the code was interrupted")
            result.error = CodeError("DiskQuotaExceeded", (
                f"the files under /sandbox grew past the sandbox's disk quota (sandbox.disk, "
                f"{describe_bytes(self.config.file_bytes)}), so {stopped}; delete files it no "
                "longer needs before writing more"), result.error.traceback if result.error else "")
        if self._pids_cgroup is not None and self._pids_cgroup.refusals() > fork_refusals and not result.state_reset:
            # Processes past the cap may still be running (and forking): only a restart ends them all.
            self._restart()
            result.state_reset = True
            result.error = _process_limit_error(result.error)
        result.duration_s = time.perf_counter() - started
        files, notes = work_folder.collect(outputs, before)
        result.charts = figures + files
        result.warnings.extend(notes)
        result.stdout, result.stderr = printable(out.getvalue()), printable(err.getvalue())
        return result

    def _await_setup(self) -> None:
        """Wait for the code a fresh kernel was sent (output hooks, warm imports) before a cell runs:
        the cell's run would take its reply, and the next run would then wait for it in vain."""
        assert self._session is not None
        for warm in (True, False):
            if self._warmup_id is None:
                return
            outcome = self._session.wait_reply(self._warmup_id, START_TIMEOUT_S)
            self._warmup_id = None
            if warm and outcome.status in ("hung", "died"):
                self._restart(warm=False)

    def _on_disk_over(self, kill: bool) -> None:
        if kill:
            self._kill_by_signal()
        else:
            self._interrupt_by_signal()

    def _kill_by_signal(self) -> None:
        """SIGKILL to the kernel's processes, from the disk watcher's thread (the session's own
        sockets are left to the run's thread, which then sees the kernel gone and restarts it)."""
        proc = self._session.proc if self._session else None
        if proc is None:
            return
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _interrupt_by_signal(self) -> None:
        """SIGINT to the kernel process, from the disk watcher's thread (its ZeroMQ sockets are the
        run's thread's alone)."""
        proc = self._session.proc if self._session else None
        if proc is None:
            return
        for pid in [proc.pid, *descendants(proc.pid)]:
            try:
                if _is_kernel(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")):
                    os.kill(pid, signal.SIGINT)
                    return
            except OSError:
                continue

    @staticmethod
    def _code_error(content: dict[str, Any], limit: str) -> CodeError:
        name, message = str(content.get("ename", "Error")), str(content.get("evalue", ""))
        if name.endswith("MemoryError"):  # numpy raises _ArrayMemoryError, a MemoryError subclass
            message = f"{message + ': ' if message else ''}the sandbox's memory limit is {limit}"
        traceback = printable("\n".join(content.get("traceback", [])))
        return CodeError(name=name, message=message, traceback=traceback)


def _is_kernel(argv: list[bytes]) -> bool:
    """The Python kernel itself, not a launcher above it (unshare, sh, setpriv, bwrap), whose command
    lines hold the kernel's too: a SIGINT to one of those ends the whole session."""
    return bool(argv) and os.path.basename(argv[0]).startswith(b"python") and b"ipykernel_launcher" in argv


def _process_limit_error(error: CodeError | None) -> CodeError:
    """The code's own error (often BlockingIOError from fork), or a new one, saying the limit held."""
    note = (f"the code tried to run more than {MAX_PROCESSES} processes and threads at once (the sandbox's "
            f"limit), so the Python session was restarted: {STATE_GONE}")
    if error is None:
        return CodeError("ProcessLimitExceeded", note, "")
    return CodeError(error.name, f"{error.message}; {note}" if error.message else note, error.traceback)
