"""CPU time by component of a fleet (Prefect server, PostgreSQL, workers, flow runs, sandboxes), from
psutil snapshots of every process on the machine.

The kernel adds a process's CPU time, once it has exited and its parent has waited for it, to the
parent's ``children_user``/``children_system``. So the CPU time a process tree used over an interval
is exact from two snapshots, one at each end, as long as its root lives through the interval: the
sum, over the root and its live descendants, of their own time and of their waited-for children's.
The server, PostgreSQL's postmaster and the workers live through every batch, so their totals are
exact, and so is a worker's whole tree (its loop, the flow-run processes it started, their sandboxes).

The split of a worker's tree between flow-run processes and sandboxes is sampled: a sandbox (the
process tree a flow run starts with one of SANDBOX_LAUNCHERS: unshare, sh and setpriv drop root, then
bwrap, the kernel; any other child, such as the bytecode cache's build, counts with the flow run) is
seen every SAMPLE_SECONDS and counted at its last sighting, so each sandbox can miss up to
SAMPLE_SECONDS of CPU at its end (its shutdown); that goes to the flow runs' figure instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

SAMPLE_SECONDS = 0.5
SANDBOX_LAUNCHERS = frozenset({"unshare", "sh", "setpriv", "bwrap"})  # each execs the next
COMPONENTS = ("Prefect server", "PostgreSQL", "workers (own loop)", "flow-run processes", "sandboxes",
              "this benchmark", "rest of the machine")


@dataclass(frozen=True)
class ProcTimes:
    ppid: int
    name: str
    started: float  # create_time: a pid reused within a batch is another process
    own: float  # user + system
    reaped: float  # the waited-for children's user + system


Snapshot = dict[int, ProcTimes]


def snapshot() -> Snapshot:
    found = {}
    for proc in psutil.process_iter(["ppid", "name", "create_time", "cpu_times"]):
        times = proc.info["cpu_times"]
        if times is None:  # exited, or not readable
            continue
        found[proc.pid] = ProcTimes(proc.info["ppid"], proc.info["name"] or "", proc.info["create_time"],
                                    times.user + times.system, times.children_user + times.children_system)
    return found


def children(snap: Snapshot, pid: int) -> list[int]:
    return [child for child, times in snap.items() if times.ppid == pid]


def tree_cpu(snap: Snapshot, root: int) -> float:
    """CPU seconds of ``root``, its live descendants, and every process they have waited for."""
    by_parent: dict[int, list[int]] = {}
    for pid, times in snap.items():
        by_parent.setdefault(times.ppid, []).append(pid)
    total, todo = 0.0, [root] if root in snap else []
    while todo:
        pid = todo.pop()
        total += snap[pid].own + snap[pid].reaped
        todo.extend(by_parent.get(pid, []))
    return total


def machine_busy() -> float:
    """CPU seconds all cores have spent on anything but idling since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


@dataclass
class CpuUsage:
    wall: float
    seconds: dict[str, float]  # per component, in COMPONENTS' order
    busy: float  # the whole machine
    cores: int
    mean_in_flight: float  # flow-run processes alive, averaged over the samples
    mean_sandboxes: float

    def core_share(self, component: str) -> float:
        """Of what the machine's cores could have done in the wall time."""
        return self.seconds[component] / (self.wall * self.cores)

    def cpu_share(self, component: str) -> float:
        """Of the CPU time the machine spent."""
        return self.seconds[component] / self.busy if self.busy else 0.0


@dataclass
class FleetCpu:
    """Started before a batch, ``sample()``d while it runs, ``stop()``ped after its last run ended.

    ``runners`` are the processes whose children are flow-run processes: the workers, or this
    process while it runs `analyst run` itself (the baseline). This process also started the server
    and the workers: a runner's children that are parts of the fleet are not flow runs.
    """

    server: int
    postmaster: int
    workers: Sequence[int]
    runners: Sequence[int]
    _first: Snapshot = field(default_factory=dict)
    _busy0: float = 0.0
    _t0: float = 0.0
    _sandboxes: dict[tuple[int, float], float] = field(default_factory=dict)
    _in_flight: list[int] = field(default_factory=list)
    _alive_sandboxes: list[int] = field(default_factory=list)

    def start(self) -> None:
        self._first, self._busy0, self._t0 = snapshot(), machine_busy(), time.monotonic()

    def _parts(self) -> set[int]:
        return {self.server, self.postmaster, *self.workers}

    def _flow_runs_cpu(self, snap: Snapshot, runner: int) -> float:
        """A runner's tree less its own loop and the fleet's parts below it: its flow runs, exited or alive."""
        if runner not in snap:
            return 0.0
        parts = [pid for pid in children(snap, runner) if pid in self._parts()]
        return tree_cpu(snap, runner) - snap[runner].own - sum(tree_cpu(snap, pid) for pid in parts)

    def sample(self) -> None:
        snap = snapshot()
        flow_runs = [pid for runner in self.runners for pid in children(snap, runner) if pid not in self._parts()]
        sandboxes = [pid for flow_run in flow_runs for pid in children(snap, flow_run)
                     if snap[pid].name in SANDBOX_LAUNCHERS]
        for pid in sandboxes:
            key = (pid, snap[pid].started)
            self._sandboxes[key] = max(self._sandboxes.get(key, 0.0), tree_cpu(snap, pid))
        self._in_flight.append(len(flow_runs))
        self._alive_sandboxes.append(len(sandboxes))

    def stop(self) -> CpuUsage:
        last, busy, wall = snapshot(), machine_busy() - self._busy0, time.monotonic() - self._t0

        def delta(measure) -> float:
            return measure(last) - measure(self._first)

        me = os.getpid()
        server = delta(lambda s: tree_cpu(s, self.server))
        postgres = delta(lambda s: tree_cpu(s, self.postmaster))
        workers_own = delta(lambda s: sum(s[w].own for w in self.workers if w in s))
        harness = delta(lambda s: s[me].own)
        below_runners = delta(lambda s: sum(self._flow_runs_cpu(s, r) for r in self.runners))
        sandboxes = sum(self._sandboxes.values())
        seconds = {"Prefect server": server, "PostgreSQL": postgres, "workers (own loop)": workers_own,
                   "flow-run processes": below_runners - sandboxes, "sandboxes": sandboxes,
                   "this benchmark": harness}
        seconds["rest of the machine"] = max(0.0, busy - sum(seconds.values()))
        samples = max(1, len(self._in_flight))
        return CpuUsage(wall, seconds, busy, psutil.cpu_count() or 1, sum(self._in_flight) / samples,
                        sum(self._alive_sandboxes) / samples)
