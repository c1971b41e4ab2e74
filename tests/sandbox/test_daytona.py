"""The Daytona provider with the real SDK against the stand-in API: what it sends, where its key
comes from, stateless runs, the crash hook and `analyst sandboxes`. Faults: test_daytona_faults.py."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from typer.testing import CliRunner

from tasks.config.schema import SandboxConfig
from tasks.errors import SandboxError
from tasks.sandbox import create_sandbox
from tasks.sandbox.daytona import DaytonaSandbox

SECRET = f"sk-host-{uuid.uuid4().hex}"
CONFIG = SandboxConfig(provider="daytona", timeout=20, max_output_chars=2000)
LABELS = {"analysis": "weekly-sales", "flow-run": "3f1c0c4e-run"}


def make(config=CONFIG, **kw) -> DaytonaSandbox:
    return create_sandbox(config, labels=LABELS, warm_imports=(), **kw)


def test_what_the_sdk_sends_at_creation(daytona_api, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("ANALYST_TEST_SECRET", SECRET)
    with make() as sb:
        inside = json.loads(sb.run_code("import json, os\nprint(json.dumps(dict(os.environ)))").stdout)
        sandbox_id = sb.sandbox_id
    [body] = daytona_api.created
    assert body["labels"] == {**LABELS, "created-by": "analyst", "code-toolbox-language": "python",
                              "analyst-attempt": body["labels"]["analyst-attempt"]}
    assert body["autoStopInterval"] == 15 and body["autoDeleteInterval"] == 0
    assert body["networkBlockAll"] is True and "networkAllowList" not in body and body["public"] is False
    assert "snapshot" not in body and "buildInfo" not in body  # Daytona's default snapshot
    assert SECRET not in json.dumps(body) and SECRET not in json.dumps(inside)
    assert set(body["env"]) == {"MPLBACKEND", "PYTHONUNBUFFERED", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"}
    sent = [r for r in daytona_api.requests if r.path.startswith(("/api/", "/toolbox/"))]
    assert {r.headers["authorization"] for r in sent} == {f"Bearer {daytona_api.api_key}"}
    assert daytona_api.deleted[-1] == sandbox_id and daytona_api.sandboxes == {}


def test_snapshot_image_resources_network_and_target(daytona_api):
    allow = CONFIG.model_copy(update={"snapshot": "analyst-py312", "network": ["10.0.0.0/8", "pypi.org"],
                                      "auto_stop_interval": "30m", "auto_delete_interval": "1h", "target": "eu"})
    with make(allow):
        pass
    image = CONFIG.model_copy(update={"image": "python:3.12-slim", "cpus": 2, "memory": "3GiB", "disk": "10GiB",
                                      "network": "allow"})
    with make(image):
        pass
    snap, built = daytona_api.created
    assert snap["snapshot"] == "analyst-py312" and snap["target"] == "eu"
    assert snap["networkBlockAll"] is False
    assert snap["networkAllowList"] == "10.0.0.0/8" and snap["domainAllowList"] == "pypi.org"
    assert snap["autoStopInterval"] == 30 and snap["autoDeleteInterval"] == 60
    assert "cpu" not in snap  # a snapshot brings its own resources
    assert "FROM python:3.12-slim" in built["buildInfo"]["dockerfileContent"]
    assert (built["cpu"], built["memory"], built["disk"]) == (2, 3, 10)
    assert built["networkBlockAll"] is False and "networkAllowList" not in built
    assert daytona_api.sandboxes == {}


def test_a_missing_key_is_a_clear_configuration_error(daytona_api, monkeypatch, tmp_path):
    monkeypatch.delenv("DAYTONA_API_KEY")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SandboxError, match="no Daytona API key found.*DAYTONA_API_KEY.*api_key_secret") as caught:
        make().provision()
    assert caught.value.transient is False and daytona_api.requests == []


def test_the_key_may_come_from_the_env_file_beside_the_config(daytona_api, monkeypatch, tmp_path):
    monkeypatch.delenv("DAYTONA_API_KEY")
    (tmp_path / ".env").write_text(f"DAYTONA_API_KEY={daytona_api.api_key}\nDAYTONA_TARGET=eu\n")
    with make(config_dir=tmp_path):
        pass
    assert daytona_api.created[-1]["target"] == "eu"


def test_an_api_url_from_an_env_file_is_refused(daytona_api, monkeypatch, tmp_path):
    monkeypatch.delenv("DAYTONA_API_URL")
    (tmp_path / ".env").write_text("DAYTONA_API_URL=http://attacker.invalid/api\n")
    with pytest.raises(SandboxError, match="export DAYTONA_API_URL"):
        make(config_dir=tmp_path).provision()
    assert daytona_api.requests == []


def test_stateless_runs_use_code_run_and_its_chart_artifacts(daytona_api):
    with make(CONFIG.model_copy(update={"stateful": False})) as sb:
        shown = sb.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.title('t')\nplt.show()\n"
                            "from PIL import Image\nImage.new('RGB', (6, 4)).save('outputs/p.jpg')\nx = 1\nx + 1")
        assert shown.ok and shown.stdout == "2\n"
        assert [(c.name, c.source) for c in shown.charts] == [("figure-1.png", "figure"), ("outputs/p.png", "file")]
        from PIL import Image

        assert Image.open(io.BytesIO(shown.charts[1].png)).size == (6, 4)
        fresh = sb.run_code("print(x)")  # every run starts afresh
        assert fresh.error is not None and fresh.error.name == "NameError"
        assert "name 'x' is not defined" in fresh.error.message and 'File "<cell>", line 1' in fresh.error.traceback
        cut = sb.run_code("print('A' * 5000 + 'Z' * 5000)")
        assert "[... 8,001 characters cut ...]" in cut.stdout
        slow = sb.run_code("import time\ntime.sleep(30)", timeout=1)
        assert slow.timed_out and any("time limit" in w for w in slow.warnings)
    assert any(r.path.endswith("/process/code-run") for r in daytona_api.requests)
    assert not any(r.path.endswith("/process/interpreter/context") for r in daytona_api.requests)
    assert daytona_api.sandboxes == {}


def _flow_run(flow_run_id: uuid.UUID, config_path: str, overrides: dict | None = None):
    from prefect.client.schemas.objects import FlowRun

    return FlowRun(id=flow_run_id, name="crashed-run", flow_id=uuid.uuid4(),
                   parameters={"config": config_path, "overrides": overrides or {}})


@pytest.fixture
def demo_config(tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    config = tmp_path / "analysis.yaml"
    config.write_text("name: hook-test\ndatasets:\n  - name: d\n    path: data.csv\n    schema: {columns: {}}\n"
                      "prompt: go\nsandbox:\n  provider: daytona\n")
    return config


def test_the_crash_hook_deletes_the_runs_sandboxes(daytona_api, demo_config, monkeypatch, caplog):
    import logging

    import prefect.logging.loggers

    from tasks.prefect.crash_hooks import delete_flow_run_sandboxes

    # The hook logs to the flow run (the Prefect API); here, where no API runs, to a plain logger.
    monkeypatch.setattr(prefect.logging.loggers, "flow_run_logger", lambda *a: logging.getLogger("hook"))
    caplog.set_level(logging.INFO, "hook")

    run_id = uuid.uuid4()
    crashed = create_sandbox(CONFIG, labels={"analysis": "hook-test", "flow-run": str(run_id)}, warm_imports=())
    crashed.provision()  # never torn down: the process "crashed"
    other = make()
    other.provision()
    delete_flow_run_sandboxes(None, _flow_run(run_id, str(demo_config)), None)
    assert crashed.sandbox_id in daytona_api.deleted and set(daytona_api.sandboxes) == {other.sandbox_id}
    assert f"Deleted Daytona sandbox(es) of this run: {crashed.sandbox_id}" in caplog.text
    crashed.teardown()  # the flow's own teardown, if it still runs, finds it gone: fine
    other.teardown()
    delete_flow_run_sandboxes(None, _flow_run(run_id, str(demo_config), {"sandbox.provider": "local"}), None)
    delete_flow_run_sandboxes(None, _flow_run(run_id, "/nonexistent.yaml"), None)  # logs, never raises
    assert "Could not look for this run's Daytona sandboxes (ConfigError" in caplog.text
    assert daytona_api.sandboxes == {}


def test_the_hook_is_attached_to_the_analyze_flow():
    from flows.analysis import analyze
    from tasks.prefect.crash_hooks import delete_flow_run_sandboxes

    assert delete_flow_run_sandboxes in analyze.on_crashed_hooks
    assert delete_flow_run_sandboxes in analyze.on_cancellation_hooks


def test_cli_lists_and_cleans_up_only_this_tools_sandboxes(daytona_api, monkeypatch, tmp_path):
    from daytona import CreateSandboxFromSnapshotParams, Daytona, DaytonaConfig

    from cli import app

    monkeypatch.chdir(tmp_path)
    ours = make()
    ours.provision()
    foreign = Daytona(DaytonaConfig(api_key=daytona_api.api_key, api_url=daytona_api.api_url)).create(
        CreateSandboxFromSnapshotParams(labels={"team": "other"}))
    runner = CliRunner()
    listed = runner.invoke(app, ["sandboxes", "list"])
    assert listed.exit_code == 0 and ours.sandbox_id in listed.output and foreign.id not in listed.output
    assert "weekly-sales" in listed.output
    listed_json = json.loads(runner.invoke(app, ["sandboxes", "list", "--json"]).stdout)
    assert [(s["id"], s["analysis"]) for s in listed_json["sandboxes"]] == [(ours.sandbox_id, "weekly-sales")]
    young = runner.invoke(app, ["sandboxes", "cleanup"])  # default --older-than 1h: just created, kept
    assert young.exit_code == 0 and "No Daytona sandboxes" in young.output
    dry = runner.invoke(app, ["sandboxes", "cleanup", "--older-than", "0s", "--dry-run"])
    assert dry.exit_code == 0 and "Would delete 1" in dry.output and ours.sandbox_id in daytona_api.sandboxes
    done = runner.invoke(app, ["sandboxes", "cleanup", "--older-than", "0s"])
    assert done.exit_code == 0 and "Deleted 1" in done.output
    assert set(daytona_api.sandboxes) == {foreign.id}
    bad = runner.invoke(app, ["sandboxes", "cleanup", "--older-than", "soon"])
    assert bad.exit_code == 2 and "--older-than" in bad.output
    ours.teardown()
    foreign.delete()
    monkeypatch.delenv("DAYTONA_API_KEY")
    missing = runner.invoke(app, ["sandboxes", "list"])
    assert missing.exit_code == 1 and "DAYTONA_API_KEY" in missing.output
    assert daytona_api.sandboxes == {}
