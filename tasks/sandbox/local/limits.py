"""Memory and CPU limits for the kernel's process tree.

Two layers, because neither alone gives both a clear error and a hard bound:

* ``RLIMIT_AS`` on every process (inherited from bwrap): an allocation past it fails at once with a
  ``MemoryError`` the analysis code sees, and the session keeps its state. It counts address space,
  not RAM: thread stacks, malloc arenas and mapped libraries reserve ~0.5 GB in a kernel that has
  imported pandas and matplotlib, so the cap is ``memory + ADDRESS_SPACE_SLACK``.
* A cgroup v1 memory controller, when this machine lets us create one (root with a writable
  ``/sys/fs/cgroup/memory``), at the same ``memory + ADDRESS_SPACE_SLACK`` of RAM: a process's RAM
  never exceeds its address space, so the kernel alone meets its ``MemoryError`` first; the cgroup
  is the backstop for all the sandbox's processes together, subprocesses and its tmpfs ``/tmp``
  included. Past it the kernel OOM-kills a process inside the group; the provider reports that
  kill (``MemoryLimitKill``) and restarts the session. Elsewhere only the first layer applies.

Processes: a cgroup v1 ``pids`` controller caps the sandbox's processes and threads together at
``MAX_PROCESSES``, so a fork bomb gets ``BlockingIOError`` (EAGAIN) from ``fork`` instead of the
host's process table. Where no such cgroup can be made, ``RLIMIT_NPROC`` is the fallback; it counts
every process of the user on the host, and does not bind root, so it is weaker.

Files: ``RLIMIT_FSIZE`` caps the size of any one file the sandbox writes (``sandbox.disk``); a
write past it fails with ``OSError: [Errno 27] File too large`` (Python ignores ``SIGXFSZ``).

CPUs: a cgroup v1 ``cpu`` quota (``cpus`` cores' worth of time, on whichever cores are free) when the
machine allows one; otherwise the kernel is pinned to the first ``cpus`` cores. Pinning is the
fallback only: on a small machine the pinned core is also the one the flow and the Prefect server
want, and the analysis then waits for them (seen here: cells about 50% slower under the flow on 2 cores).
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

ADDRESS_SPACE_SLACK = 512 * 1024**2
MAX_PROCESSES = 512  # processes and threads of one sandbox (a kernel with pandas runs ~30 threads)
_CGROUP_V1 = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


def _own_cgroup(controller: str) -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return _CGROUP_V1 / controller / path.lstrip("/")
    return None


def _make_cgroup(controller: str, settings: dict[str, str]) -> Path | None:
    """A child cgroup of ours under ``controller`` with ``settings`` written, or None if not allowed."""
    parent = _own_cgroup(controller)
    if parent is None or not os.access(parent, os.W_OK):
        return None
    path = parent / f"analyst-sandbox-{uuid.uuid4().hex[:12]}"
    try:
        path.mkdir()
        for name, value in settings.items():
            if (path / name).exists() or not name.endswith("?"):
                (path / name.rstrip("?")).write_text(value)
    except OSError as exc:
        log.debug("no %s cgroup for the sandbox (%s)", controller, exc)
        try:
            path.rmdir()
        except OSError:
            pass
        return None
    return path


class MemoryCgroup:
    """A child memory cgroup of our own, or nothing if the machine does not allow one."""

    def __init__(self, path: Path):
        self.path = path
        self._procs = str(path / "cgroup.procs")

    @classmethod
    def create(cls, limit_bytes: int) -> MemoryCgroup | None:
        # memsw (when present): otherwise the limit would only push the sandbox into swap
        path = _make_cgroup("memory", {"memory.limit_in_bytes": str(limit_bytes),
                                       "memory.memsw.limit_in_bytes?": str(limit_bytes)})
        return cls(path) if path else None

    def join_from_child(self) -> None:
        """Called between fork and exec: "0" moves the writing process itself (cgroup v1)."""
        fd = os.open(self._procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)

    def oom_kills(self) -> int:
        return self._counter("memory.oom_control", "oom_kill")

    def _counter(self, file: str, name: str) -> int:
        """The value of ``name`` in one of the cgroup's "name value" files, 0 if it cannot be read."""
        try:
            text = (self.path / file).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        return 0

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in Path(self._procs).read_text().split()]
        except OSError:
            return []

    def kill_all(self, wait_s: float = 3.0) -> None:
        deadline = time.monotonic() + wait_s
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for _ in range(50):  # a just-killed group can stay busy for a moment
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)
        log.warning("could not remove the sandbox's cgroup %s", self.path)


class CpuCgroup(MemoryCgroup):
    """A child cpu cgroup with a CFS quota of ``cpus`` cores, or nothing if not allowed."""

    @classmethod
    def create(cls, cpus: int) -> CpuCgroup | None:
        path = _make_cgroup("cpu", {"cpu.cfs_period_us": str(CFS_PERIOD_US),
                                    "cpu.cfs_quota_us": str(cpus * CFS_PERIOD_US)})
        return cls(path) if path else None


class PidsCgroup(MemoryCgroup):
    """A child pids cgroup capping the sandbox at ``limit`` processes and threads, or nothing if not allowed."""

    @classmethod
    def create(cls, limit: int) -> PidsCgroup | None:
        path = _make_cgroup("pids", {"pids.max": str(limit)})
        return cls(path) if path else None

    def refusals(self) -> int:
        """How many forks the limit has refused so far (``max`` in ``pids.events``)."""
        return self._counter("pids.events", "max")


def _nproc_fallback(uid: int | None = None) -> int | None:
    """RLIMIT_NPROC for when no pids cgroup exists: the processes of the uid the sandbox runs as
    plus our cap. None for root, whom the kernel does not hold to it."""
    uid = os.getuid() if uid is None else uid
    if uid == 0:
        return None
    count = 0
    for entry in os.scandir("/proc"):
        try:
            count += entry.name.isdigit() and entry.stat().st_uid == uid
        except OSError:
            pass
    return count + MAX_PROCESSES


def ram_limit(memory_bytes: int) -> int:
    """The memory cgroup's limit: the address-space cap, so that one process hits its cap first."""
    return memory_bytes + ADDRESS_SPACE_SLACK


def make_preexec(*, memory_bytes: int, cpus: int, cgroup: MemoryCgroup | None, cpu_cgroup: CpuCgroup | None = None,
                 pids_cgroup: PidsCgroup | None = None, file_bytes: int | None = None,
                 run_as: tuple[int, int] | None = None, rewind_fd: int | None = None):
    """The function run in the child between fork and exec. Everything it needs is computed here:
    after fork only plain system calls are safe (the parent may have other threads).
    ``run_as`` is the (uid, gid) the sandbox will run as (for the RLIMIT_NPROC fallback);
    ``rewind_fd`` (the seccomp filter, read by bwrap at every start) is rewound."""
    address_space = memory_bytes + ADDRESS_SPACE_SLACK
    allowed = sorted(os.sched_getaffinity(0))
    cpu_set = set(allowed[:cpus])
    setrlimit, sched_setaffinity = resource.setrlimit, os.sched_setaffinity
    rlimit_as, rlimit_core = resource.RLIMIT_AS, resource.RLIMIT_CORE
    rlimit_fsize, rlimit_nproc = resource.RLIMIT_FSIZE, resource.RLIMIT_NPROC
    join = cgroup.join_from_child if cgroup is not None else None
    join_cpu = cpu_cgroup.join_from_child if cpu_cgroup is not None else None
    join_pids = pids_cgroup.join_from_child if pids_cgroup is not None else None
    nproc = _nproc_fallback(run_as[0] if run_as else None) if pids_cgroup is None else None
    lseek = os.lseek

    def preexec() -> None:
        if join is not None:
            join()
        if join_pids is not None:
            join_pids()
        elif nproc is not None:
            setrlimit(rlimit_nproc, (nproc, nproc))
        setrlimit(rlimit_as, (address_space, address_space))
        setrlimit(rlimit_core, (0, 0))  # a crashing kernel must not drop a core file of GBs
        if file_bytes is not None:
            setrlimit(rlimit_fsize, (file_bytes, file_bytes))
        if join_cpu is not None:
            join_cpu()
        else:
            sched_setaffinity(0, cpu_set)
        if rewind_fd is not None:
            lseek(rewind_fd, 0, 0)

    return preexec


def describe_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
