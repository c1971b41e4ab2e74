"""A deployment's runs retry as its config says, whoever runs them: a process worker of the pool named in
`analyst deploy --work-pool` (it imports the flow afresh, so the retries travel in the deployment's job
variables), or `analyst serve` (it hands Prefect's Runner the flow object it built, retries included;
`prefect.serve(*deployments)` would import the entrypoint afresh for each run and lose them).

End to end on a Prefect server of the test's own: the real anthropic SDK in the run's process against
the stand-in API (the 5th request fails with a 401, which is not retried by the SDK), the local sandbox.
The retry resumes where the failed attempt stopped: no model turn is paid twice.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import yaml

from deployments import build_deployment, prefect_yaml
from deployments._build import _flow_and_options
from tasks.config import load_config
from tests.conftest import system_command
from tests.deployments.test_deployments import copy_demo
from tests.flows.test_resume import assert_resumed_at_iteration_5, script_failure_at_iteration_5
from tests.scaleout import processes
from tests.scaleout.prefect_server import PrefectServer, prefect_server
from tests.scaleout.workers import process_workers

POOL = "retrying"
API_KEY = "sk-ant-test-worker-retries-0123456789"
WAIT = 300.0  # seconds for the run to end: generous on a busy 2-core machine; never a timed assertion
RETRY_SETTINGS = ("PREFECT_FLOWS_DEFAULT_RETRIES", "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS")


@pytest.fixture(scope="module")
def server() -> Iterator[PrefectServer]:
    with prefect_server() as started:
        yield started


@pytest.fixture
def short_folder() -> Iterator[Path]:
    """Not pytest's tmp_path: the sandbox's Unix sockets live under the runner's TMPDIR (~107 bytes at most)."""
    folder = Path(tempfile.mkdtemp(prefix="analyst-wr-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def retrying_config(folder: Path, name: str, base_url: str) -> Path:
    """The demo, without its schedule (its runs would join the history), asking the stand-in, retried once at once."""
    config = copy_demo(folder, name)
    text = config.read_text().split("schedule:")[0]  # outputs: beside the config, by default
    text = text.replace("  max_cost_usd: 2.00\n", f"  max_cost_usd: 2.00\n  base_url: {base_url}\n")
    assert base_url in text
    config.write_text(text + "retries: 1\nretry_delay: 0s\n")
    return config


def analyst(server: PrefectServer, *args: object) -> str:
    """The `analyst` command in its own process, pointed at the server as a user's shell is."""
    done = subprocess.run([sys.executable, "-c", "from cli import app; app()", *map(str, args)],
                          env=server.client_env(COLUMNS="200"), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@contextmanager
def worker_runs(server: PrefectServer, configs: Path, folder: Path) -> Iterator[list[Path]]:
    """`analyst deploy --work-pool`, then one process worker (no retry setting in its environment)."""
    out = analyst(server, "deploy", configs, "--work-pool", POOL)
    assert f"Work pool '{POOL}' (process): created" in out, out
    with process_workers(server, POOL, folder / "workers", count=1, limit=1) as [worker]:
        worker_env = (Path("/proc") / str(worker.proc.pid) / "environ").read_bytes().split(b"\0")
        assert not [v for v in worker_env if v.split(b"=")[0].decode() in RETRY_SETTINGS]  # only the deployment's
        yield [worker.log]


@contextmanager
def served_runs(server: PrefectServer, configs: Path, folder: Path) -> Iterator[list[Path]]:
    """`analyst serve` in its own process until the test ends."""
    tmpdir = folder / "serve-tmp"
    tmpdir.mkdir()
    log = folder / "serve.log"
    env = server.client_env(COLUMNS="200", TMPDIR=str(tmpdir), PREFECT_RUNNER_POLL_FREQUENCY="1")
    proc = processes.start([sys.executable, "-c", "from cli import app; app()", "serve", str(configs)],
                           env, log, cwd=folder)
    try:
        processes.wait_until(lambda: "Serving 1 deployment" in log.read_text(errors="replace"), proc, log,
                             "analyst serve", 120.0)
        yield [log]
    finally:
        processes.stop(proc)


RUNNERS: dict[str, Callable[[PrefectServer, Path, Path], AbstractContextManager[list[Path]]]] = {
    "worker": worker_runs, "serve": served_runs,
}


@pytest.mark.slow
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_a_deployment_run_retries_as_its_config_says_and_pays_no_turn_twice(
        runner, server, anthropic_api, short_folder, monkeypatch) -> None:
    system_command("bwrap", "bubblewrap")
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)  # the runner's environment: where runs read the key
    name = f"{runner}-retries"
    config = retrying_config(short_folder / "configs", name, anthropic_api.base_url)
    script_failure_at_iteration_5(anthropic_api)

    with RUNNERS[runner](server, config.parent, short_folder) as logs, server.client() as client:
        deployment = client.read_deployment_by_name(f"analyze/{name}")
        if runner == "worker":
            assert deployment.work_pool_name == POOL
            assert deployment.job_variables == {"env": {"PREFECT_FLOWS_DEFAULT_RETRIES": "1",
                                                        "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS": "0"}}
        else:
            assert deployment.work_pool_name is None and deployment.job_variables == {}
        run_id = client.create_flow_run_from_deployment(deployment.id).id
        deadline = time.monotonic() + WAIT
        while not ((run := client.read_flow_run(run_id)).state and run.state.is_final()):
            assert time.monotonic() < deadline, f"run {run_id} still {run.state.name if run.state else None}:\n" + \
                "\n".join(processes.tail(log, 60) for log in logs)
            time.sleep(0.5)

    assert run.state.is_completed(), f"{run.state.name}: {run.state.message}"
    assert run.run_count == 2 and run.empirical_policy.retries == 1
    [run_dir] = (config.parent / "outputs" / name).glob("*/")  # run folders; history.jsonl sits beside them
    transcript = assert_resumed_at_iteration_5(anthropic_api, run_dir)  # 4 + the failed one + 3: none twice
    assert transcript.flow_run_id == str(run_id)
    assert all(request.api_key == API_KEY for request in anthropic_api.requests)


@pytest.mark.parametrize("retries, delay, seconds", [(2, "1m", "60"), (0, "90s", "90"), (1, 0, "0")])
def test_the_retries_travel_to_workers_in_the_job_variables_and_only_there(tmp_path, retries, delay,
                                                                             seconds) -> None:
    config = copy_demo(tmp_path, "travel")
    config.write_text(config.read_text() + f"retries: {retries}\nretry_delay: {delay}\n")
    loaded = load_config(config)
    env = {"PREFECT_FLOWS_DEFAULT_RETRIES": str(retries), "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS": seconds}
    for_pool = build_deployment(loaded, "pool")
    assert (for_pool.work_pool_name, for_pool.job_variables) == ("pool", {"env": env})
    # analyst serve: no job variables (Prefect refuses them without a work pool); it runs the flow object.
    assert build_deployment(loaded).job_variables == {}
    # Whole seconds everywhere: the server refuses a run's retry delay of 1.5 (HTTP 422).
    flow, _ = _flow_and_options(loaded)
    assert (flow.retries, flow.retry_delay_seconds) == (retries, int(seconds))
    [entry] = yaml.safe_load(prefect_yaml([loaded], "pool"))["deployments"]
    assert entry["work_pool"] == {"name": "pool", "job_variables": {"env": env}}
