"""The fleet benchmark's CPU accounting (benchmarks/fleet_cpu.py), on real processes: a stand-in flow
run that burns CPU itself and in a child named like a sandbox launcher, beside long-lived stand-ins
for the fleet's parts started by the same parent (as the benchmark starts the server and workers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks.fleet_cpu import FleetCpu

# Burns CPU, then runs a "sandbox" (`sh`, one of SANDBOX_LAUNCHERS) that burns CPU and idles, then
# reports what the kernel charged it and its waited-for children.
FLOW_RUN = """
import json, resource, subprocess
sum(i * i for i in range(3_000_000))
subprocess.run(["sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 2"], check=True)
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"own": own.ru_utime + own.ru_stime, "sandbox": kids.ru_utime + kids.ru_stime}))
"""
TICK = 0.02  # /proc reports CPU time in clock ticks (10 ms); two readings may each round


def test_flow_runs_and_sandboxes_are_split_and_the_fleets_parts_are_not_counted_as_runs() -> None:
    parts = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]  # server, postmaster, worker
    try:
        meter = FleetCpu(parts[0].pid, parts[1].pid, [parts[2].pid], runners=[os.getpid()])
        meter.start()
        flow_run = subprocess.Popen([sys.executable, "-c", FLOW_RUN], stdout=subprocess.PIPE, text=True)
        while flow_run.poll() is None:
            meter.sample()
            time.sleep(0.05)
        charged = json.loads(flow_run.stdout.read() if flow_run.stdout else "")
        usage = meter.stop()
    finally:
        for part in parts:
            part.kill()
            part.wait()

    assert charged["sandbox"] > 0.1, charged  # the sandbox burned measurably
    # The sandbox idled 2 s after burning: its last sighting holds all its CPU. It is read as two live
    # processes (`sh` and the `sleep` it waits on), each with a user and a system time that may round.
    assert abs(usage.seconds["sandboxes"] - charged["sandbox"]) <= 2 * TICK, (usage.seconds, charged)
    assert abs(usage.seconds["flow-run processes"] - charged["own"]) <= 2 * TICK, (usage.seconds, charged)
    # The sleeping parts used next to nothing, and were never taken for flow runs.
    assert usage.seconds["Prefect server"] + usage.seconds["PostgreSQL"] + usage.seconds["workers (own loop)"] <= TICK
    assert usage.mean_in_flight <= 1.0
