"""The ``analyze`` flow end to end: a real local Prefect server, the real anthropic SDK against the
stand-in Messages API, and the local sandbox running the code for real."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from flows.analysis import analyze
from tasks.agent import events
from tasks.errors import ModelError
from tasks.prefect.validate import DataInvalid
from tasks.transcript import Transcript
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.flows.conftest import demo_with_an_invalid_row

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"


@pytest.fixture
def env(prefect_api, anthropic_api, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-flow")
    return {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out")}


def bwrap_processes() -> set[int]:
    """Live bubblewrap processes started by this test process (other sessions may run their own)."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1: stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
            if name == "bwrap" and rest[0] != "Z" and int(rest[1]) == os.getpid():
                found.add(int(proc.name))
    return found


def artifacts(flow_run_id: str) -> dict[str, object]:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {a.key: a for a in found if a.key}


def task_run_names(flow_run_id: str) -> list[str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return sorted(r.name for r in runs)


def test_the_demo_config_runs_end_to_end_with_artifacts(env, anthropic_api) -> None:
    anthropic_api.enqueue_tool_use(code="import pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(len(df))",
                                   text="Loading.")
    anthropic_api.enqueue_tool_use(code=["by_region = df.groupby('region').revenue.sum()",
                                         "import matplotlib.pyplot as plt\nby_region.plot.bar(title='By region')"])
    anthropic_api.enqueue_text("# Report\nEast leads; see *By region*.")
    anthropic_api.enqueue_results(DEMO_RESULTS)  # the demo declares results: asked for after the report
    before = bwrap_processes()

    result = analyze(str(DEMO), env)

    assert result["status"] == "completed" and result["iterations"] == 4
    assert anthropic_api.bodies[3]["tool_choice"] == {"type": "tool", "name": "submit_results"}
    assert result["results"] == DEMO_RESULTS
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == Path(env["outputs.dir"]) / "retail-sales"
    for name in ("report.md", "report.html", "analysis.ipynb", "transcript.json", "results.json"):
        assert (run_dir / name).is_file(), name
    assert result["charts"] == ["charts/iteration-02-chart-1.png"]
    assert "East leads" in (run_dir / "report.md").read_text()
    transcript = Transcript.load(run_dir / "transcript.json")
    assert transcript.cells[0].stdout == "14620\n"
    assert transcript.usage.output_tokens > 0 and result["cost_usd"] > 0

    # What Claude was told: the sandbox path of the data and its validated columns.
    system = anthropic_api.requests[0].body["system"][0]["text"]
    assert "data/sales.csv" in system and "revenue" in system and "/work/" not in system

    found = artifacts(result["flow_run_id"])
    assert {"retail-sales-report", "retail-sales-validation", "retail-sales-iteration-1",
            "retail-sales-iteration-2", "retail-sales-iteration-3", "retail-sales-usage",
            "retail-sales-results"} <= set(found)
    assert found["retail-sales-results"].type == "table" and "best_region" in str(found["retail-sales-results"].data)
    assert "data:image/png;base64," in found["retail-sales-report"].data
    assert found["retail-sales-report"].type == "markdown"
    progress = [a for a in found.values() if a.type == "progress"]
    assert progress and progress[0].data == 100
    names = task_run_names(result["flow_run_id"])
    assert {"iteration-1", "iteration-2", "iteration-3"} <= set(names)  # the results turn runs in iteration-3's task
    assert any(n.startswith("teardown-sandbox") for n in names)
    assert bwrap_processes() - before == set()  # the sandbox is gone


def test_a_failure_mid_run_keeps_the_transcript_and_tears_down(env, anthropic_api) -> None:
    anthropic_api.enqueue_tool_use(code="print('first')")
    anthropic_api.enqueue_tool_use(code="print('second')")
    anthropic_api.enqueue_error(401, message="invalid x-api-key")
    before = bwrap_processes()

    with pytest.raises(ModelError):
        analyze(str(DEMO), env)

    [run_dir] = (Path(env["outputs.dir"]) / "retail-sales").glob("*/")
    transcript = Transcript.load(run_dir / "transcript.json")
    assert transcript.status == "failed" and "ModelError" in transcript.stop_detail
    assert [c.stdout for c in transcript.cells] == ["first\n", "second\n"]
    assert (run_dir / "report.md").is_file() and "Failed" in (run_dir / "report.md").read_text()
    assert bwrap_processes() - before == set()


def test_invalid_data_stops_before_any_sandbox(env, anthropic_api, tmp_path) -> None:
    bad_config = demo_with_an_invalid_row(tmp_path / "bad")

    with pytest.raises(DataInvalid) as caught:
        analyze(str(bad_config), env)

    [report] = caught.value.reports
    assert report.failure_count == 1 and report.failures[0].row == 4 and report.failures[0].failure_case == "nowhere"
    assert anthropic_api.requests == []  # no model call, and no sandbox: nothing was paid for


def test_invalid_data_tears_down_the_sandbox_started_meanwhile(env, anthropic_api, tmp_path) -> None:
    """A new run starts its sandbox while its data is validated: data that fails leaves none behind."""
    bad_config = demo_with_an_invalid_row(tmp_path / "bad")
    before, flow_runs = bwrap_processes(), []

    with events.listening(lambda kind, data: flow_runs.append(data["flow_run_id"]) if kind == "flow_run" else None):
        with pytest.raises(DataInvalid):
            analyze(str(bad_config), env)

    assert anthropic_api.requests == []
    names = task_run_names(flow_runs[0])
    assert "provision-sandbox" in " ".join(names) and "teardown-sandbox" in " ".join(names), names
    assert bwrap_processes() - before == set()


def test_replay_runs_the_shipped_transcript_again(env, anthropic_api) -> None:
    result = analyze(str(DEMO), env, replay=str(ROOT / "configs" / "retail-sales.transcript.json"))
    assert result["status"] == "completed" and result["cost_usd"] == 0
    assert len(result["charts"]) == 2
    run_dir = Path(result["run_dir"])
    transcript = json.loads((run_dir / "transcript.json").read_text())
    assert transcript["provider"] == "replay"
    assert all(c["error"] is None for i in transcript["iterations"] for c in i["cells"])
    assert anthropic_api.requests == []
    # The demo's results: in the summary, results.json, and at the top of the report.
    assert result["results"] == transcript["results"] == {"total_revenue": 3385047, "revenue_change_pct": 19.3,
                                                           "best_region": "east", "sudden_changes": 1}
    assert json.loads((run_dir / "results.json").read_text()) == result["results"]
    report = (run_dir / "report.md").read_text()
    assert report.index("## Results") < report.index("# Café sales") and "| `revenue_change_pct` | 19.3 % |" in report
