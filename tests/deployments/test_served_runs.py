"""Runs of served deployments, end to end: `analyst serve` in a subprocess against the session's real Prefect
server, runs triggered as a user does (`prefect deployment run`, `run_deployment`), the model's turns replayed
from the demo transcript and every code cell run for real in the local sandbox."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from tests.deployments.test_deployments import TRANSCRIPT, copy_demo
from tests.serving import serving

pytestmark = pytest.mark.slow

PREFECT = str(Path(sys.executable).with_name("prefect"))
SERVED = ("override-sales", "serial-sales", "changing-sales", "steady-sales")
WAIT = 240.0  # seconds for a run to end: generous, the machine may be busy; never a timed assertion


@pytest.fixture(scope="module")
def served(_local_prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One `analyst serve` of four copies of the demo (each its own deployment) for the module; yields their folder."""
    folder = tmp_path_factory.mktemp("served") / "configs"
    for name in SERVED:
        copy_demo(folder, name)
    env = {**os.environ, "PREFECT_API_URL": _local_prefect_server, "PREFECT_RUNNER_POLL_FREQUENCY": "1",
           "COLUMNS": "200"}
    with serving([folder], env, timeout=90):
        yield folder


def client():
    from prefect import get_client

    return get_client(sync_client=True)


def trigger(name: str, **parameters) -> UUID:
    from prefect.deployments import run_deployment

    # One iteration unless said otherwise: enough to run code in the sandbox, and quicker than the demo's six.
    parameters = {"replay": str(TRANSCRIPT), "overrides": {"model.max_iterations": 1}, **parameters}
    return run_deployment(f"analyze/{name}", timeout=0, parameters=parameters).id


def wait_until(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)
    return found


def finished(flow_run_id: UUID):
    def final():
        with client() as c:
            run = c.read_flow_run(flow_run_id)
        return run if run.state and run.state.is_final() else None
    return wait_until(final, f"flow run {flow_run_id} to end")


def state_names(flow_run_id: UUID) -> list[str]:
    with client() as c:
        return [s.name for s in c.read_flow_run_states(flow_run_id)]


def logs(flow_run_id: UUID) -> str:
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with client() as c:
        found = c.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in found)


def task_runs(flow_run_id: UUID, task_name: str) -> list:
    """The runs of the task ``task_name`` in a flow run (task runs are named ``<task name>-<suffix>``)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with client() as c:
        found = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [t for t in found if t.name == task_name or t.name.startswith(f"{task_name}-")]


def task_run(flow_run_id: UUID, task_name: str):
    [found] = task_runs(flow_run_id, task_name)
    return found


def transcript_of(folder: Path, name: str, flow_run_id: UUID) -> dict:
    [path] = (folder.parent / "outputs" / name).glob(f"*-{str(flow_run_id)[:8]}/transcript.json")
    return json.loads(path.read_text())


@pytest.fixture
def sandbox_limit(cli, prefect_api) -> Iterator:
    """Sets the global limit 'sandboxes' through the CLI; removes it afterwards (the server is shared)."""
    def set_to(n: int) -> str:
        result = cli("limits", "set", "sandboxes", n)
        assert result.exit_code == 0, result.output
        return result.output
    try:
        yield set_to
    finally:
        assert cli("limits", "remove", "sandboxes").exit_code == 0


def test_overrides_given_as_nested_json_on_the_prefect_command_line(served, prefect_api) -> None:
    """`prefect deployment run 'analyze/<name>' --param overrides='{"model": {"max_iterations": 3}}'`."""
    from deployments import read_limit_state

    command = [PREFECT, "deployment", "run", "analyze/override-sales",
               "--param", 'overrides={"model": {"max_iterations": 3}, "datasets": {"0": {"on_invalid": "warn"}}}',
               "--param", f"replay={TRANSCRIPT}"]
    result = subprocess.run(command, env={**os.environ, "PREFECT_API_URL": prefect_api}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    flow_run_id = UUID(result.stdout.split("UUID:")[1].split()[0])
    run = finished(flow_run_id)
    assert run.state.is_completed(), run.state
    assert run.parameters["overrides"] == {"model": {"max_iterations": 3}, "datasets": {"0": {"on_invalid": "warn"}}}
    transcript = transcript_of(served, "override-sales", flow_run_id)
    # The demo's transcript has 6 iterations: the override stopped it at 3 (then the final report).
    assert (transcript["status"], transcript["stop_detail"]) == ("max_iterations", "stopped after 3 iterations")
    # Without a 'sandboxes' limit the run is not held back, and none is created behind the user's back.
    wait_until(lambda: "Sandboxes are not capped" in logs(flow_run_id), "the run's log that it is not capped")
    assert read_limit_state("sandboxes") is None


def test_a_bad_override_fails_the_run_with_the_config_error(served, prefect_api) -> None:
    flow_run_id = trigger("override-sales", overrides={"model": {"max_iteratons": 3}})
    run = finished(flow_run_id)
    assert run.state.is_failed()
    line = f"{served / 'override-sales.yaml'}: model.max_iteratons: unknown key; did you mean 'max_iterations'?"
    assert line in run.state.message and "set by an override" in run.state.message
    wait_until(lambda: line in logs(flow_run_id), "the error in the run's logs")  # logs are sent in batches


def test_runs_wait_for_their_deployments_slot_and_never_two_sandboxes_live_over_the_cap(served, prefect_api, cli,
                                                                                       sandbox_limit) -> None:
    """Deterministic: this test holds the only sandbox slot. The first run of serial-sales and a run of another
    analysis start and wait (Running, logged) for it; a second run of serial-sales waits for its deployment's
    only run slot without starting. Then the slot is freed: all complete, one sandbox alive at a time."""
    from prefect.concurrency.sync import concurrency

    assert "sandboxes: at most 1 at once (created)" in sandbox_limit(1)
    with concurrency("sandboxes", occupy=1, lease_duration=60, strict=True):
        first, other = trigger("serial-sales"), trigger("steady-sales")
        for run in (first, other):
            wait_until(lambda: "Waiting for a sandbox slot" in logs(run), "a run to wait for a sandbox slot")
            assert state_names(run)[-1] == "Running"
            assert task_runs(run, "load-config") and not task_runs(run, "provision-sandbox")  # no sandbox yet
        second = trigger("serial-sales")
        wait_until(lambda: "AwaitingConcurrencySlot" in state_names(second), "the second run to wait for its turn")
        assert "Running" not in state_names(second) and state_names(first)[-1] == "Running"
        shown = cli("limits", "show").output
        assert "sandboxes" in shown and "analyze/serial-sales" in shown, shown

    flow_runs = [first, second, other]
    runs = [finished(flow_run_id) for flow_run_id in flow_runs]
    assert all(run.state.is_completed() for run in runs), [run.state for run in runs]
    for run in (first, other):
        wait_until(lambda: "Got a sandbox slot of 'sandboxes'" in logs(run), "the run's log that it got its slot")
    assert runs[1].start_time >= runs[0].end_time  # serial-sales: the second ran only after the first had ended
    # The cap: from provisioning to the end of teardown, the three sandboxes' lives never overlap.
    alive = sorted((task_run(f, "provision-sandbox").start_time, task_run(f, "teardown-sandbox").end_time)
                   for f in flow_runs)
    assert all(earlier[1] <= later[0] for earlier, later in zip(alive, alive[1:])), alive


def test_a_config_change_applies_at_the_next_run_and_a_broken_config_fails_only_its_run(served, prefect_api) -> None:
    config = served / "changing-sales.yaml"
    original = config.read_text()
    try:
        config.write_text(original.replace("Which regions", "Since the last run, which regions"))
        changed = trigger("changing-sales")
        assert finished(changed).state.is_completed()
        prompt = transcript_of(served, "changing-sales", changed)["prompt"]
        assert prompt.startswith("Since the last run, which regions")

        config.write_text(original.replace("  max_iterations:", "  max_iteratons:"))
        broken, other = trigger("changing-sales"), trigger("steady-sales")
        run = finished(broken)
        assert run.state.is_failed()
        line = f"{config}: model.max_iteratons: unknown key; did you mean 'max_iterations'?"
        assert line in run.state.message
        wait_until(lambda: line in logs(broken), "the error in the run's logs")  # logs are sent in batches
        assert finished(other).state.is_completed()
    finally:
        config.write_text(original)
