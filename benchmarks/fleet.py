"""The throughput of a fleet: replayed analyses per minute through PostgreSQL and two process workers,
as the number of runs triggered at once grows, and where the CPU goes.

    .venv/bin/python benchmarks/fleet.py                    # batches of 10 and 20 runs
    .venv/bin/python benchmarks/fleet.py --runs 10,20,40

Set-up, with the scale-out test's own pieces (tests/scaleout/): a throwaway PostgreSQL cluster,
`prefect server start` on it, the demo analysis (configs/retail-sales.yaml) deployed to a process
work pool with `analyst deploy --work-pool`, and two `prefect worker start --limit 2`: at most four
runs at once, no cap on sandboxes. Every run replays the demo's model turns
(configs/retail-sales.transcript.json): no model is called, each code cell runs for real in a local
bubblewrap sandbox, so a run is all CPU and no waiting for a model.

Baseline, in the same run and against the same server: `analyst run --replay` alone, one run at a
time, median of --baseline-runs: its runs per minute at concurrency 1.

Each batch: N runs triggered at once through the API; its wall time is from the trigger to the last
run's final state. Meanwhile the CPU time of each component is measured with psutil
(benchmarks/fleet_cpu.py says how, and what is exact and what is sampled), as a share of the two
cores over the batch's wall time and as a share of all the CPU the machine spent, the rest of the
machine (other work on a shared machine, the kernel) included.

Targets: every run completes; the fleet's throughput >= TARGET_SPEEDUP x one run alone (two
workers on two cores); no slowdown as N grows (throughput at the largest N >= TARGET_FLAT x at the
smallest); the orchestration (server, PostgreSQL, workers' own loops) under TARGET_ORCHESTRATION of
the CPU the fleet used.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.fleet_cpu import COMPONENTS, SAMPLE_SECONDS, CpuUsage, FleetCpu  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tests.scaleout.prefect_server import PrefectServer
    from tests.scaleout.workers import Worker

NAME, POOL = "fleet-sales", "fleet"
WORKERS, RUNS_PER_WORKER = 2, 2
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"
TARGET_SPEEDUP = 1.5
TARGET_FLAT = 0.9
TARGET_ORCHESTRATION = 0.5
ORCHESTRATION = ("Prefect server", "PostgreSQL", "workers (own loop)")
FLEET = COMPONENTS[:5]
SECONDS_PER_RUN_LIMIT = 60.0  # a batch fails after 120 s + this per run


def missing_system_commands() -> list[str]:
    found = {name: shutil.which(name) or glob.glob(f"/usr/lib/postgresql/*/bin/{name}") for name in ("initdb", "bwrap")}
    return [name for name, path in found.items() if not path]


def batch_sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(n) for n in text.split(",") if n.strip()})
    except ValueError:
        sizes = []
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: positive run counts separated by commas, e.g. 10,20,40")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=batch_sizes, default=[10, 20],
                        help="batch sizes, comma-separated (default 10,20; 10,20,40 takes about twice as long)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="runs of the baseline (default 3)")
    args = parser.parse_args()
    batches = args.runs
    if missing := missing_system_commands():
        sys.exit(f"benchmarks/fleet.py: {' and '.join(missing)} not found: run  make test-system-deps bubblewrap")
    # SIGTERM as Ctrl-C: the with-blocks below stop the workers, the server and PostgreSQL either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="analyst-fleet-"))  # short: sandboxes' sockets live under it
    try:
        baseline, results = run_benchmark(folder, batches, args.baseline_runs)
    except KeyboardInterrupt:
        sys.exit("interrupted: the workers, the Prefect server and PostgreSQL were stopped")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report(baseline, results)


def run_benchmark(folder: Path, batches: list[int],
                  baseline_runs: int) -> tuple[list[tuple[float, CpuUsage]], list[dict]]:
    from tests.deployments.test_deployments import copy_demo
    from tests.scaleout.cluster import analyst
    from tests.scaleout.postgres import postgres_cluster
    from tests.scaleout.prefect_server import prefect_server
    from tests.scaleout.workers import process_workers

    with ExitStack() as stack:
        print("starting PostgreSQL and a Prefect server on it...", flush=True)
        cluster = stack.enter_context(postgres_cluster())
        cluster.create_database("prefect")
        server = stack.enter_context(prefect_server(cluster.url("prefect")))
        config = copy_demo(folder / "configs", NAME)
        # No schedule (its runs would join the batches); `concurrency.runs` (default 1) as high as the
        # workers' slots, so that the workers alone set how many run at once.
        config.write_text(config.read_text().split("schedule:")[0]
                          + f"concurrency:\n  runs: {WORKERS * RUNS_PER_WORKER}\n")
        analyst(server, "deploy", config, "--work-pool", POOL)
        workers = stack.enter_context(process_workers(server, POOL, folder / "workers", count=WORKERS,
                                                      limit=RUNS_PER_WORKER))
        with server.client() as client:
            deployment = client.read_deployment_by_name(f"analyze/{NAME}").id
        worker_pids = [w.proc.pid for w in workers]

        def cpu_meter(runners: list[int]) -> FleetCpu:
            return FleetCpu(server.pid, cluster.postmaster_pid(), worker_pids, runners)

        print(f"baseline: `analyst run --replay` alone, {baseline_runs} runs...", flush=True)
        baseline = [run_alone(server, config, cpu_meter, folder / "baseline.log") for _ in range(baseline_runs)]
        results = []
        for n in batches:
            print(f"batch: {n} runs on {WORKERS} workers x {RUNS_PER_WORKER}...", flush=True)
            results.append(run_batch(server, deployment, n, cpu_meter(worker_pids), workers))
        return baseline, results


def run_alone(server: PrefectServer, config: Path, cpu_meter: Callable[[list[int]], FleetCpu],
              log: Path) -> tuple[float, CpuUsage]:
    """One `analyst run --replay` in its own process, as a user runs it; its wall time and CPU."""
    meter = cpu_meter([os.getpid()])
    meter.start()
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from cli import app; app()", "run", str(config), "--replay",
                                 str(TRANSCRIPT)], env=server.client_env(COLUMNS="200"), stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        while proc.poll() is None:
            meter.sample()
            time.sleep(SAMPLE_SECONDS)
    finally:
        if proc.poll() is None:  # interrupted: its sandbox goes with it (bwrap --die-with-parent)
            proc.terminate()
            proc.wait()
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"analyst run exited {proc.returncode}:\n{log.read_text()}")
    return wall, meter.stop()


def run_batch(server: PrefectServer, deployment: UUID, n: int, meter: FleetCpu, workers: Sequence[Worker]) -> dict:
    """``n`` runs triggered at once; the batch's wall time, its runs' timings, and the CPU by component."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from tests.scaleout import processes
    from tests.scaleout.cluster import trigger_runs

    meter.start()
    started = time.monotonic()
    run_ids = trigger_runs(server, [deployment] * n, {"replay": str(TRANSCRIPT)})
    only_these = FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
    deadline = started + 120 + SECONDS_PER_RUN_LIMIT * n
    next_poll = 0.0
    with server.client() as client:
        while True:
            meter.sample()
            if time.monotonic() >= next_poll:
                runs = client.read_flow_runs(flow_run_filter=only_these, limit=n)
                if len(runs) == n and all(r.state and r.state.is_final() for r in runs):
                    break
                next_poll = time.monotonic() + 1.0
            for worker in workers:
                if worker.proc.poll() is not None:
                    raise RuntimeError(f"{worker.name} exited:\n{processes.tail(worker.log)}")
            if time.monotonic() > deadline:
                states = sorted(f"{r.id}: {r.state.name if r.state else None}" for r in runs)
                raise RuntimeError(f"{n} runs not final after {deadline - started:.0f} s:\n" + "\n".join(states))
            time.sleep(SAMPLE_SECONDS)
    wall = time.monotonic() - started
    usage = meter.stop()
    completed = [r for r in runs if r.state and r.state.is_completed()]
    durations = [(r.end_time - r.start_time).total_seconds() for r in completed if r.start_time and r.end_time]
    waits = [(r.start_time - r.created).total_seconds() for r in completed if r.start_time and r.created]
    return {"n": n, "wall": wall, "completed": len(completed), "usage": usage,
            "run_s": statistics.mean(durations) if durations else float("nan"),
            "wait_s": statistics.mean(waits) if waits else float("nan")}


def report(baseline: list[tuple[float, CpuUsage]], results: list[dict]) -> None:
    from benchmarks.fleet_report import print_report

    print_report(baseline, results, targets={"speedup": TARGET_SPEEDUP, "flat": TARGET_FLAT,
                                             "orchestration": TARGET_ORCHESTRATION},
                 orchestration=ORCHESTRATION, fleet=FLEET, slots=WORKERS * RUNS_PER_WORKER)


if __name__ == "__main__":
    main()
