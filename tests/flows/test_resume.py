"""Durable runs end to end: a real Prefect server, the real anthropic SDK against the stand-in API (which
counts every request), the local sandbox. A retried or resumed run makes only the requests it has not
made yet, and its sandbox holds what the earlier cells built."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.analysis import analyze
from tasks.transcript import Transcript
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"


def script_iterations(api, first: int, last: int, results_at: int = 6) -> None:
    """Iteration n runs one cell; iteration 2 defines `base`, which iteration 6 uses. The demo declares
    results: iteration ``results_at`` submits them too."""
    codes = {1: "x = 21\nprint('one')", 2: "base = 2\nprint('two')", 3: "print('three')",
             4: "print('four')", 5: "print('five')", 6: "print(base * x)"}
    for n in range(first, last + 1):
        api.enqueue_tool_use(code=codes[n], results=DEMO_RESULTS if n == results_at else None)


@pytest.fixture
def env(prefect_api, anthropic_api, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-resume")
    return {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out")}


def script_failure_at_iteration_5(api) -> None:
    script_iterations(api, 1, 4)
    api.enqueue_error(401, message="invalid x-api-key")  # the 5th request: the SDK does not retry it
    script_iterations(api, 5, 6)
    api.enqueue_text("# Report\nbase * x is 42.")


def assert_resumed_at_iteration_5(api, run_dir: Path) -> Transcript:
    # 4 turns, the failed 5th request, then iterations 5, 6, 7 once more: nothing was asked twice.
    assert [r.status for r in api.requests] == [200] * 4 + [401] + [200] * 3
    assert api.requests[5].body["messages"] == api.requests[4].body["messages"]  # the same conversation
    assert list(run_dir.parent.glob("*/")) == [run_dir]  # the retry went on in its first attempt's folder
    transcript = Transcript.load(run_dir / "transcript.json")
    assert transcript.status == "completed" and [i.number for i in transcript.iterations] == [1, 2, 3, 4, 5, 6, 7]
    # The sandbox was rebuilt: iteration 6 reads what iterations 1 and 2 defined before the failure.
    assert transcript.iterations[5].cells[0].stdout == "42\n" and transcript.iterations[5].cells[0].error is None
    assert transcript.run_key == transcript.flow_run_id and transcript.resumed_from == []
    return transcript


def flow_run_and_tasks(flow_run_id: str):
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    return run, tasks


@pytest.mark.slow
def test_a_retried_run_resumes_where_it_failed_without_paying_twice(cli, env, anthropic_api, tmp_path) -> None:
    from prefect.filesystems import LocalFileSystem

    results = tmp_path / "shared-results"
    LocalFileSystem(basepath=str(results)).save("resume-test-results", overwrite=True)
    script_failure_at_iteration_5(anthropic_api)

    result = cli("run", DEMO, "--json", "--set", "retries=1", "--set", "retry_delay=0",
                 "--set", "outputs.results_storage=local-file-system/resume-test-results",
                 *(f"--set={key}={value}" for key, value in env.items()))

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["iterations"] == 7
    assert_resumed_at_iteration_5(anthropic_api, Path(summary["run_dir"]))
    # The turns were in the block (the retry got iterations 1-4 from it, unpaid); the run ended, so they are gone.
    assert results.is_dir() and list(results.glob("model-turn-*")) == []
    run, tasks = flow_run_and_tasks(summary["flow_run_id"])
    assert run.state.is_completed() and run.run_count == 2
    assert sum(t.name.startswith("rebuild-sandbox") for t in tasks) == 1


@pytest.mark.slow
def test_retry_from_the_ui_resumes_the_failed_run(env, anthropic_api) -> None:
    """What the UI's Retry button does (state AwaitingRetry, forced), then what a worker does with it."""
    from prefect.client.schemas.objects import State, StateType
    from prefect.flow_engine import run_flow

    from tasks.errors import ModelError

    script_failure_at_iteration_5(anthropic_api)
    with pytest.raises(ModelError):
        analyze(str(DEMO), env)
    [run_dir] = (Path(env["outputs.dir"]) / "retail-sales").glob("*/")
    flow_run_id = Transcript.load(run_dir / "transcript.json").flow_run_id
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, State(type=StateType.SCHEDULED, name="AwaitingRetry",
                                                     message="Retry from the UI"), force=True)
        flow_run = client.read_flow_run(flow_run_id)

    result = run_flow(analyze, flow_run=flow_run, parameters=flow_run.parameters)

    assert result["flow_run_id"] == flow_run_id and result["status"] == "completed"
    assert_resumed_at_iteration_5(anthropic_api, run_dir)
    assert flow_run_and_tasks(flow_run_id)[0].state.is_completed()


@pytest.mark.slow
def test_a_results_storage_block_that_does_not_exist_stops_the_run_before_any_sandbox(env, anthropic_api) -> None:
    from tasks.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        analyze(str(DEMO), env | {"outputs.results_storage": "local-file-system/no-such-block"})
    [problem] = caught.value.problems
    assert problem.file == str(DEMO) and problem.key == "outputs.results_storage"
    assert "'local-file-system/no-such-block'" in problem.message and "remove the key" in problem.message
    assert anthropic_api.requests == []


def test_resume_of_another_analysis_exits_2_before_starting_anything(cli, tmp_path) -> None:
    other = tmp_path / "20261126-101010-abcdef12"
    Transcript("weekly-sales", "claude-sonnet-5-5", "anthropic", "system", "question", status="failed").save(
        other / "transcript.json")
    result = cli("run", DEMO, "--resume", other)
    assert result.exit_code == 2
    assert f"{other / 'transcript.json'}: analysis: this is a run of 'weekly-sales', not of 'retail-sales'" in \
        " ".join(result.output.split())


def test_retry_and_results_storage_keys_are_checked(tmp_path) -> None:
    from tasks.config import load_config
    from tasks.errors import ConfigError

    loaded = load_config(DEMO, {"retries": 2, "retry_delay": "1m"})
    assert (loaded.config.retries, loaded.config.retry_delay_seconds) == (2, 60.0)
    with pytest.raises(ConfigError) as caught:
        load_config(DEMO, {"retries": -1, "retry_delay": "1.5s", "outputs.results_storage": "/mnt/results"})
    keys = {p.key: p.message for p in caught.value.problems}
    assert set(keys) == {"retries", "retry_delay", "outputs.results_storage"}
    assert "whole number of seconds" in keys["retry_delay"]
    assert "'block-type/block-name'" in keys["outputs.results_storage"]


# --- a killed process, and `analyst run --resume` -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _descendants(pid: int) -> dict[int, str]:
    """Live processes below ``pid``: {pid: command name}."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if rest[0] == "Z":
            continue
        names[int(proc.name)] = stat[stat.index("(") + 1: stat.rindex(")")]
        children.setdefault(int(rest[1]), []).append(int(proc.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = names[child]
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    pytest.fail(f"gave up after {timeout:.0f} s waiting for {what() if callable(what) else what}")


def _flow_run_state(api_url: str, flow_run_id: str) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{api_url}/flow_runs/{flow_run_id}", timeout=10) as response:
        return json.load(response)["state"]["type"]


@pytest.mark.slow
def test_a_killed_run_is_marked_crashed_and_resumes_with_only_the_remaining_requests(anthropic_api, tmp_path) -> None:
    """SIGKILL while iteration 4's code runs: its turn was received (persisted) but never recorded."""
    home, outputs = tmp_path / "analyst-home", tmp_path / "out"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    child_env |= {"ANALYST_HOME": str(home), "ANALYST_SERVER_PORT": str(_free_port()), "ANTHROPIC_API_KEY": "sk-test",
                  "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "NO_PROXY": "127.0.0.1,localhost"}
    sets = ["--set", f"model.base_url={anthropic_api.base_url}", "--set", f"outputs.dir={outputs}"]
    analyst = [str(Path(sys.executable).with_name("analyst"))]
    script_iterations(anthropic_api, 1, 3)
    anthropic_api.enqueue_tool_use(code="import time\ntime.sleep(6)\nprint('four')")
    script_iterations(anthropic_api, 5, 6)
    anthropic_api.enqueue_text("# Report\nbase * x is 42.")

    log = tmp_path / "first-run.log"
    with log.open("wb") as out:
        first = subprocess.Popen([*analyst, "run", str(DEMO), *sets], env=child_env, cwd=tmp_path,
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        run_root = outputs / "retail-sales"
        transcript_path = _wait_for(lambda: next(run_root.glob("*/transcript.json"), None), 120, "a run folder")
        # Iteration 3 recorded and iteration 4's turn persisted: its cell (a 6 s sleep) is running now.
        _wait_for(lambda: len(list((outputs / ".results").glob("model-turn-*"))) == 4
                  and len(Transcript.load(transcript_path).iterations) == 3, 120,
                  lambda: f"iteration 4's code to start; the run printed:\n{log.read_text()}")
        sandbox = {pid: name for pid, name in _descendants(first.pid).items()
                   if name == "bwrap" or "ipykernel" in _cmdline(pid)}
        assert "bwrap" in sandbox.values() and len(sandbox) >= 2  # bubblewrap and the kernel inside it
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    try:
        crashed = Transcript.load(transcript_path)
        assert crashed.status == "running" and len(crashed.iterations) == 3
        _wait_for(lambda: not any(_alive(pid) for pid in sandbox), 30,
                  lambda: f"the sandbox to die with its parent: {[_cmdline(p) for p in sandbox if _alive(p)]}")
        assert len(anthropic_api.requests) == 4

        resumed = subprocess.run([*analyst, "run", str(DEMO), *sets, "--resume", str(transcript_path.parent), "--json"],
                                 env=child_env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        # Still Running on the server (crash detection takes up to two heartbeat periods from the last
        # heartbeat, which may come just before the kill): the user is told to make sure it is dead. On a
        # loaded machine the server can mark it Crashed before the resume reads it; then nothing is said.
        api_url = f"http://127.0.0.1:{json.loads((home / 'prefect' / 'server.json').read_text())['port']}/api"
        if _flow_run_state(api_url, crashed.flow_run_id) == "RUNNING":
            assert f"flow run {crashed.flow_run_id} of that folder is still Running" in " ".join(
                resumed.stderr.split())
        summary = json.loads(resumed.stdout)
        # Iteration 4's turn came from the persisted results; only iterations 5, 6 and 7 were asked.
        assert len(anthropic_api.requests) == 4 + 3
        assert [len(r.body["messages"]) for r in anthropic_api.requests[4:]] == [9, 11, 13]
        assert summary["status"] == "completed" and summary["iterations"] == 7
        final = Transcript.load(Path(summary["run_dir"]) / "transcript.json")
        assert final.iterations[5].cells[0].stdout == "42\n"  # `base` and `x` were rebuilt in the new sandbox
        assert final.iterations[3].cells[0].stdout == "four\n"
        assert final.resumed_from == [str(transcript_path.parent)] and final.run_key == crashed.flow_run_id
        # It ended: the turns saved by both runs (the killed one's folder is in resumed_from) are deleted.
        assert list((outputs / ".results").glob("model-turn-*")) == []

        # The server learns of the crash from the missing heartbeats (flows/crash_detection.py).
        _wait_for(lambda: _flow_run_state(api_url, crashed.flow_run_id) == "CRASHED", 150,
                  "the killed run to be marked Crashed", interval=2)
        assert _flow_run_state(api_url, summary["flow_run_id"]) == "COMPLETED"
    finally:
        subprocess.run([*analyst, "server", "stop"], env=child_env, cwd=tmp_path, capture_output=True, timeout=60)


def copy_demo(folder: Path) -> Path:
    import shutil

    shutil.copytree(ROOT / "configs", folder, ignore=shutil.ignore_patterns("*.transcript.json", "*.py"))
    return folder / "retail-sales.yaml"


@pytest.mark.slow
def test_resume_refuses_changed_data_and_sandbox_settings_naming_what_changed(env, anthropic_api, tmp_path) -> None:
    from tasks.errors import ConfigError, ModelError

    config = copy_demo(tmp_path / "configs")
    script_iterations(anthropic_api, 1, 1)
    anthropic_api.enqueue_error(401, message="invalid x-api-key")
    with pytest.raises(ModelError):
        analyze(str(config), env)
    [run_dir] = (Path(env["outputs.dir"]) / "retail-sales").glob("*/")
    assert set(Transcript.load(run_dir / "transcript.json").fingerprint) == {"sandbox", "datasets"}

    for changed, key in (({"sandbox.memory": "1GiB"}, "sandbox.memory"), ({"sandbox.cpus": 2}, "sandbox.cpus")):
        with pytest.raises(ConfigError) as caught:
            analyze(str(config), env | changed, resume=str(run_dir))
        assert [p.key for p in caught.value.problems] == [key]
        assert "changed since this run" in caught.value.problems[0].message

    # Two rows swapped: the same rows, columns and statistics (so the same system prompt), other data.
    data = tmp_path / "configs" / "data" / "retail_sales.csv"
    lines = data.read_text().splitlines(keepends=True)
    lines[500], lines[501] = lines[501], lines[500]
    data.write_text("".join(lines))
    with pytest.raises(ConfigError) as caught:
        analyze(str(config), env, resume=str(run_dir))
    [problem] = caught.value.problems
    assert problem.key == "datasets.sales" and "the data changed since this run" in problem.message
    assert len(anthropic_api.requests) == 2  # nothing was asked after the first run


@pytest.mark.slow
def test_a_retry_of_a_run_whose_transcript_had_ended_cleans_up_and_completes(env, anthropic_api) -> None:
    """A run can fail after its transcript is final (its clean-up failed); Retry from the UI then finds
    nothing to resume. The flow run is forced to AwaitingRetry after it ended, as the UI's button does."""
    from prefect.client.schemas.objects import State, StateType
    from prefect.flow_engine import run_flow

    script_iterations(anthropic_api, 1, 1, results_at=1)
    anthropic_api.enqueue_text("# Report\nDone.")
    first = analyze(str(DEMO), env)
    run_dir = Path(first["run_dir"])
    (run_dir / "report.md").unlink()  # what the failed clean-up did not write
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(first["flow_run_id"], State(type=StateType.SCHEDULED, name="AwaitingRetry",
                                                              message="Retry from the UI"), force=True)
        flow_run = client.read_flow_run(first["flow_run_id"])

    result = run_flow(analyze, flow_run=flow_run, parameters=flow_run.parameters)

    assert result["status"] == "completed" and result["iterations"] == first["iterations"] == 2
    assert len(anthropic_api.requests) == 2 and (run_dir / "report.md").is_file()
    assert list(run_dir.parent.glob("*/")) == [run_dir]
    assert flow_run_and_tasks(first["flow_run_id"])[0].state.is_completed()
