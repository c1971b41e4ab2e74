"""The Daytona provider under Prefect: the ``analyze`` flow end to end against the stand-in Daytona
and Anthropic APIs (a real local Prefect server), the provisioning retries (Prefect's, the only retry
layer), and the API key from a Prefect Secret block."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from flows.analysis import analyze
from tasks.transcript import Transcript
from tasks.config.loading import load_config
from tasks.errors import SandboxError
from tasks.prefect.provision import provision_sandbox
from tasks.prefect.secret_blocks import read_secret_block
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS

pytestmark = pytest.mark.slow

DEMO = Path(__file__).resolve().parents[2] / "configs" / "retail-sales.yaml"


def creations(api) -> int:
    return sum(1 for r in api.requests if r.method == "POST" and r.path == "/api/sandbox")


def test_a_daytona_flow_run_completes_with_charts(prefect_api, anthropic_api, daytona_api, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-flow")
    anthropic_api.enqueue_tool_use(code="import pandas as pd\ndf = pd.read_csv('data/sales.csv')\nprint(len(df))")
    anthropic_api.enqueue_tool_use(code=["by_region = df.groupby('region').revenue.sum()",
                                         "import matplotlib.pyplot as plt\nby_region.plot.bar(title='By region')\n"
                                         "plt.savefig('outputs/by-region.png')"], results=DEMO_RESULTS)
    anthropic_api.enqueue_text("# Report\nEast leads; see *By region*.")

    result = analyze(str(DEMO), {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out"),
                                 "sandbox.provider": "daytona"})

    assert result["status"] == "completed" and result["iterations"] == 3
    assert len(result["charts"]) == 2  # the figure left open, and the file it saved under outputs/
    run_dir = Path(result["run_dir"])
    assert all((run_dir / chart).read_bytes().startswith(b"\x89PNG") for chart in result["charts"])
    assert Transcript.load(run_dir / "transcript.json").cells[0].stdout == "14620\n"
    [body] = daytona_api.created
    assert body["labels"]["analysis"] == "retail-sales" and body["labels"]["flow-run"] == result["flow_run_id"]
    assert daytona_api.sandboxes == {}  # torn down


@pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send logs")  # a task outside a flow
def test_provisioning_retries_are_prefects_and_only_for_transient_errors(prefect_api, daytona_api, monkeypatch):
    loaded = load_config(DEMO, {"sandbox.provider": "daytona"})
    provision = provision_sandbox.with_options(retry_delay_seconds=0)
    labels = {"analysis": "retail-sales", "flow-run": str(uuid.uuid4())}

    daytona_api.fail_creates(503, 429)  # fails twice, then succeeds
    sandbox = provision(loaded, labels=labels)
    try:
        assert creations(daytona_api) == 3 and list(daytona_api.sandboxes) == [sandbox.sandbox_id]
    finally:
        sandbox.teardown()

    daytona_api.fail_creates(503, 503, 503)  # fails past the retries: a clear message
    with pytest.raises(SandboxError, match="HTTP 503 while creating the sandbox.*retried with backoff"):
        provision(loaded, labels=labels)
    assert creations(daytona_api) == 6

    monkeypatch.setenv("DAYTONA_API_KEY", "dtn-wrong-key")  # a configuration error: never retried
    with pytest.raises(SandboxError, match="rejected the API key"):
        provision(loaded, labels=labels)
    assert creations(daytona_api) == 7 and daytona_api.sandboxes == {}


def test_the_key_may_come_from_a_prefect_secret_block(prefect_api, daytona_api, monkeypatch):
    from prefect.blocks.system import Secret

    from tasks.sandbox import create_sandbox

    name = f"daytona-key-{uuid.uuid4().hex[:8]}"
    Secret(value=daytona_api.api_key).save(name)
    monkeypatch.delenv("DAYTONA_API_KEY")
    config = load_config(DEMO, {"sandbox.provider": "daytona", "sandbox.api_key_secret": name}).config.sandbox
    with create_sandbox(config, warm_imports=(), read_secret=read_secret_block) as sb:
        assert sb.run_code("print('ok')").stdout == "ok\n"
    missing = config.model_copy(update={"api_key_secret": "no-such-block"})
    with pytest.raises(SandboxError, match="no Prefect Secret block named 'no-such-block'"):
        create_sandbox(missing, read_secret=read_secret_block).provision()
    assert daytona_api.sandboxes == {}
