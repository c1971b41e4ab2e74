"""Scale-out: Prefect's server on PostgreSQL, two process workers, twenty analyses triggered at once.

The path docs/deployments.md ("Scale-out") describes, on one machine: `analyst deploy --work-pool`,
`prefect worker start --pool`, runs triggered through the API, the model's turns replayed from the
demo transcript (every code cell runs for real in a local bubblewrap sandbox).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import pytest

from tests.conftest import system_command
from tests.deployments.test_deployments import TRANSCRIPT, copy_demo
from tests.scaleout import processes
from tests.scaleout.cluster import analyst, trigger_runs
from tests.scaleout.prefect_server import PrefectServer
from tests.scaleout.workers import Worker

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.objects import Artifact

pytestmark = pytest.mark.slow

POOL = "scaleout"
# Several deployments, as a real history has.
ANALYSES = ("sales-north", "sales-south", "sales-east", "sales-west")
RUNS_EACH = 5
RUNS_PER_DEPLOYMENT = 2  # concurrency.runs: up to 8 runs could start at once ...
WORKERS, RUNS_PER_WORKER = 2, 2  # ... the workers take 4 at a time on this 2-core machine ...
SANDBOXES = 3  # ... and `analyst limits set sandboxes 3` lets 3 of them hold a sandbox
RUNS_TIMEOUT = 1200.0
SANDBOX_FOLDERS = ("sandbox-", "analyst-k-", "analyst-data-")  # what a local sandbox and its upload make in TMPDIR


@pytest.mark.timeout(RUNS_TIMEOUT + 300)
def test_twenty_analyses_on_two_workers_over_postgres(prefect_on_postgres: PrefectServer, start_process_workers,
                                                      tmp_path: Path, record_property) -> None:
    from prefect.client.schemas.objects import StateType

    system_command("bwrap", "bubblewrap")
    server = prefect_on_postgres
    configs = tmp_path / "configs"
    for name in ANALYSES:
        config = copy_demo(configs, name)
        # No schedule: its future runs would join the history this test counts.
        config.write_text(config.read_text().split("schedule:")[0] + f"concurrency:\n  runs: {RUNS_PER_DEPLOYMENT}\n")

    deploy = analyst(server, "deploy", configs, "--work-pool", POOL)
    assert f"Work pool '{POOL}' (process): created" in deploy
    assert f"sandboxes: at most {SANDBOXES} at once (created)" in analyst(server, "limits", "set", "sandboxes",
                                                                           SANDBOXES)
    workers = start_process_workers(server, POOL, count=WORKERS, limit=RUNS_PER_WORKER)
    with server.client() as client:
        deployments = {name: client.read_deployment_by_name(f"analyze/{name}") for name in ANALYSES}
    assert {(d.work_pool_name, d.global_concurrency_limit.limit) for d in deployments.values()} == \
        {(POOL, RUNS_PER_DEPLOYMENT)}

    started = time.monotonic()
    run_ids = trigger_runs(server, [d.id for d in deployments.values() for _ in range(RUNS_EACH)],
                           {"replay": str(TRANSCRIPT)})
    runs, seen_sandboxes, most_at_once = _wait_for_final_states(server, run_ids, workers)
    duration = time.monotonic() - started
    record_property("scaleout_duration_s", round(duration, 1))
    record_property("scaleout_most_sandboxes_at_once", most_at_once)
    print(f"\n{len(runs)} analyses on {WORKERS} workers x {RUNS_PER_WORKER}: {duration:.1f} s from trigger to the "
          f"last final state; at most {most_at_once} sandboxes at once; runs per worker "
          f"{dict(Counter(r.labels.get('prefect.worker.name') for r in runs))}")

    # Every run completed, as the server records it.
    failed = {r.id: f"{r.name}: {r.state.type.value}: {r.state.message}" for r in runs
              if r.state.type != StateType.COMPLETED}
    assert not failed, "\n".join(failed.values()) + "\n" + _errors_logged(server, list(failed))
    # Every sandbox was torn down. They ran under their workers' TMPDIRs (seen there during the runs:
    # this looks where they were): no folder is left there, no bwrap or kernel alive.
    assert seen_sandboxes == {w.name for w in workers}, seen_sandboxes
    for worker in workers:
        leftovers = [p.name for p in worker.tmpdir.iterdir() if p.name.startswith(SANDBOX_FOLDERS)]
        assert not leftovers, f"{worker.name} left {leftovers} in {worker.tmpdir}"
        assert not processes.processes_mentioning(str(worker.tmpdir))
        assert not [c for _, c in processes.descendants(worker.proc.pid) if "bwrap" in c or "ipykernel" in c]
    # The history holds exactly these 20 runs: 5 per deployment, all completed.
    with server.client() as client:
        assert client.count_flow_runs() == len(run_ids) == len(ANALYSES) * RUNS_EACH
        for name, deployment in deployments.items():
            history = [r for r in runs if r.deployment_id == deployment.id]
            assert len(history) == RUNS_EACH and {r.name for r in history} == {name}
        # Both workers ran some: the worker that runs a flow labels it.
        by_worker = Counter(r.labels.get("prefect.worker.name") for r in runs)
        assert by_worker.keys() == {w.name for w in workers}, by_worker
        # The cap held (sampled twice a second: a breach could be missed, never invented), and
        # every run gave its slot back after its teardown.
        assert 1 <= most_at_once <= SANDBOXES
        assert client.read_global_concurrency_limit_by_name("sandboxes").active_slots == 0

        for run in runs:
            name = run.name
            [run_dir] = (configs / "outputs" / name).glob(f"*-{str(run.id)[:8]}")
            transcript = json.loads((run_dir / "transcript.json").read_text())
            assert (transcript["status"], transcript["flow_run_id"]) == ("completed", str(run.id))
            assert (run_dir / "report.md").read_text().strip()
            iterations = len(transcript["iterations"])
            assert iterations == len(json.loads(TRANSCRIPT.read_text())["iterations"])
            artifacts = {a.key: a for a in _artifacts_of(client, run.id)}
            expected = {f"{name}-report", f"{name}-usage", *(f"{name}-iteration-{n}" for n in range(1, iterations + 1))}
            assert expected <= artifacts.keys(), (run.id, sorted(artifacts))
            assert transcript["final_report"].strip()[:200] in artifacts[f"{name}-report"].data


def _wait_for_final_states(server: PrefectServer, run_ids: list[UUID], workers: list[Worker]):
    """The runs once all are final; meanwhile, which workers' TMPDIRs held sandbox folders, and the
    most seen at once."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    only_these = FlowRunFilter(id=FlowRunFilterId(any_=run_ids))
    seen: set[str] = set()
    most = 0
    deadline = time.monotonic() + RUNS_TIMEOUT
    with server.client() as client:
        while True:
            now = {w.name: [p for p in w.tmpdir.iterdir() if p.name.startswith("sandbox-")] for w in workers}
            seen |= {name for name, folders in now.items() if folders}
            most = max(most, sum(map(len, now.values())))
            runs = client.read_flow_runs(flow_run_filter=only_these, limit=len(run_ids))
            if len(runs) == len(run_ids) and all(r.state and r.state.is_final() for r in runs):
                return runs, seen, most
            for worker in workers:
                assert worker.proc.poll() is None, f"{worker.name} exited:\n{processes.tail(worker.log)}"
            if time.monotonic() > deadline:
                states = sorted(f"{r.name} {r.id}: {r.state.name if r.state else None}" for r in runs)
                pytest.fail(f"runs not final after {RUNS_TIMEOUT:.0f} s:\n" + "\n".join(states) + "\n" + _logs(workers))
            time.sleep(0.5)


def _artifacts_of(client: SyncPrefectClient, run_id: UUID) -> list[Artifact]:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))


def _logs(workers: list[Worker]) -> str:
    return "\n".join(f"--- {w.name}\n{processes.tail(w.log, 80)}" for w in workers)


def _errors_logged(server: PrefectServer, run_ids: list[UUID]) -> str:
    """What the failed runs logged at WARNING and above, from the server: their tracebacks."""
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId, LogFilterLevel

    with server.client() as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=run_ids),
                                                     level=LogFilterLevel(ge_=30)))
    return "\n".join(f"{log.flow_run_id} {log.message}" for log in logs)
