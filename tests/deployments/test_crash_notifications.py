"""A run killed with SIGKILL cannot announce itself: the automation `analyst serve` keeps on the server does.

The run is served for real and killed mid-code with SIGKILL. It is then marked Crashed through the client,
as the crash-detection automation (flows/crash_detection.py, shown end to end in tests/flows/test_resume.py)
would after two missed heartbeats, which takes at least a minute. The webhook receiver stands in for Slack."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import yaml
from prefect import get_client
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.deployments import run_deployment
from prefect.states import Crashed

from deployments._crash_notifications import automation_prefix
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.scaleout.processes import descendants
from tests.serving import start_serving

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
API_KEY = "sk-ant-planted-crash-0123456789"


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    pytest.fail(f"gave up waiting for {what}")


def test_a_run_killed_with_sigkill_is_notified_as_crashed(prefect_api, anthropic_api, tmp_path) -> None:
    folder = tmp_path / "configs"
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    config = folder / DEMO.name
    raw = yaml.safe_load(config.read_text())
    raw["name"] = "crash-notified"
    raw["outputs"] = {"dir": str(tmp_path / "out")}
    raw["model"] = {**raw.get("model", {}), "base_url": anthropic_api.base_url}
    raw["notify"] = [{"block": "custom-webhook/crash-hook", "on": ["crashed"]}]
    config.write_text(yaml.safe_dump(raw))
    anthropic_api.enqueue_tool_use(code="import time\ntime.sleep(600)")
    child_env = os.environ | {"PREFECT_API_URL": prefect_api, "ANTHROPIC_API_KEY": API_KEY,
                              "NO_PROXY": "127.0.0.1,localhost"}

    with WebhookReceiver() as hook:
        CustomWebhookNotificationBlock(name="crashes", url=hook.url,
                                       json_data={"text": "{{subject}}\n{{body}}"}).save("crash-hook", overwrite=True)
        served = start_serving([config], env=child_env, timeout=300)
        try:
            assert "Crashed runs of analyze/crash-notified: notified through custom-webhook/crash-hook" in served.output
            run = run_deployment("analyze/crash-notified", timeout=0)
            results = tmp_path / "out" / ".results"
            wait_for(lambda: list(results.glob("model-turn-*")), 300, "the run's first model turn")  # its code sleeps
            for pid in {p for p, _ in descendants(served.process.pid)} | {served.process.pid}:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            served.process.wait(30)
        finally:
            if served.process.poll() is None:
                served.stop()
        with get_client(sync_client=True) as client:
            assert client.read_flow_run(run.id).state.is_running()  # the dead process said nothing
            client.set_flow_run_state(run.id, Crashed(message="No heartbeat: the process was killed."), force=True)

        [received] = hook.wait_for(1, timeout=120)

    text = received["json"]["text"]
    assert text.startswith("analysis crash-notified: crashed\nAnalysis: crash-notified\nStatus: crashed\n")
    assert str(run.id) in text  # the link to the flow run, filled in by the server
    assert API_KEY not in received["text"]
    with get_client(sync_client=True) as client:
        [automation] = [a for a in client.read_automations() if a.name.startswith(automation_prefix("crash-notified"))]
        assert automation.trigger.expect == {"prefect.flow-run.Crashed"}
