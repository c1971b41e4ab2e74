"""Alerts in real runs of the ``analyze`` flow against the test Prefect server: one that fires heads the
report and the flow run's state message, is an ``analysis.alert`` event on the server, and sends the
``notify`` entries with ``on: [alert]`` (a webhook receiver on loopback); one that does not fire sends nothing.
Each test names its analysis apart, so no other test's history is its previous run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.automations import AutomationCore

from flows.analysis import analyze
from tasks.prefect.validate import DataInvalid
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.flows.conftest import demo_with_an_invalid_row

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
REVENUE_DROP = {"name": "revenue_drop", "when": "total_revenue < previous.total_revenue * 0.9",
                "message": "Revenue fell more than 10% since the last run"}


@pytest.fixture
def hook_block(prefect_api, hook) -> UUID:
    """The block custom-webhook/alert-hook, sending to ``hook``."""
    return CustomWebhookNotificationBlock(name="alerts", url=hook.url, json_data={"text": "{{subject}}\n{{body}}"}
                                          ).save("alert-hook", overwrite=True)


@pytest.fixture
def settings(hook_block, anthropic_api, monkeypatch, tmp_path):
    """Overrides for a run: the stand-in model, its own outputs folder, a webhook for alerts only."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-alerts")

    def settings(name: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
        return {"name": name, "model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out"),
                "notify": [{"block": "custom-webhook/alert-hook", "on": ["alert"]}], "alerts": alerts}

    return settings


@pytest.fixture
def automation(hook_block) -> Iterator[None]:
    """A Prefect automation, shaped as docs/deployments.md shows, that sends the alert-hook block a message
    when alerts-fire's trend_change alert fires."""
    spec = AutomationCore.model_validate({
        "name": "test: alerts-fire trend_change",
        "trigger": {"type": "event", "posture": "Reactive", "expect": ["analysis.alert"], "threshold": 1,
                    "within": 0, "match": {"prefect.resource.id": "analysis.alerts-fire",
                                           "analysis.alert": "trend_change"}},
        "actions": [{"type": "send-notification", "block_document_id": str(hook_block),
                     "subject": "automation", "body": "{{ event.payload.alert }}: {{ event.payload.message }}"}]})
    with get_client(sync_client=True) as client:
        automation_id = client.create_automation(spec)
    try:
        yield
    finally:
        with get_client(sync_client=True) as client:
            client.delete_automation(automation_id)


def answer(anthropic_api, results: dict[str, Any]) -> None:
    anthropic_api.enqueue_tool_use(code="print(1)", text="Loading.", results=results)
    anthropic_api.enqueue_text("# Report\nEast leads.")


def alert_events(analysis: str, count: int, timeout: float = 60.0) -> list[Any]:
    """The ``analysis.alert`` events of ``analysis`` on the server, once ``count`` have been stored (the
    events worker sends them in the background and the server persists them in batches)."""
    event_filter = EventFilter(event=EventNameFilter(name=["analysis.alert"]),
                               resource=EventResourceFilter(id=[f"analysis.{analysis}"]))
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=event_filter, limit=50).events
        if len(events) >= count or time.monotonic() > deadline:
            return events
        time.sleep(0.5)


def test_an_alert_that_fires_heads_the_report_and_the_state_and_is_an_event(settings, automation, anthropic_api,
                                                                           hook) -> None:
    answer(anthropic_api, DEMO_RESULTS)
    changes = {"name": "trend_change", "when": "sudden_changes > 0", "message": "A region's trend changed"}

    summary = analyze(str(DEMO), settings("alerts-fire", [changes, REVENUE_DROP]))

    assert summary["status"] == "completed"  # the caller still gets the summary
    assert summary["alerts"] == ["trend_change: A region's trend changed (sudden_changes=1)"]
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(summary["flow_run_id"]).state
    assert state.is_completed()
    assert state.message == "Alert fired: trend_change (A region's trend changed)"

    report = Path(summary["report"]).read_text()
    header, rest = report.split("## Alerts\n\n", 1)
    assert header.startswith("# alerts-fire\n\n**Status:** Completed") and "## Results" not in header
    assert rest.startswith("- **Fired: trend\\_change**: A region's trend changed (sudden\\_changes = 1)\n"
                           "- Not evaluated: revenue\\_drop: no previous completed run\n\n## Results")

    [event] = alert_events("alerts-fire", 1)
    assert event.resource.root == {"prefect.resource.id": "analysis.alerts-fire",
                                   "prefect.resource.name": "alerts-fire", "analysis.alert": "trend_change"}
    assert event.payload == {"alert": "trend_change", "message": "A region's trend changed",
                             "when": "sudden_changes > 0", "values": {"sudden_changes": 1}, "status": "completed"}
    assert f"prefect.flow-run.{summary['flow_run_id']}" in {r.id for r in event.related}

    # the notify entry's message, from the flow, and the automation's, from the server
    texts = sorted(r["json"]["text"] for r in hook.wait_for(2))
    assert texts[0].startswith("analysis alerts-fire: completed, 1 alert(s)\n")
    assert "Alerts fired:\n- trend_change: A region's trend changed (sudden_changes=1)\n" in texts[0]
    assert texts[1] == "automation\ntrend_change: A region's trend changed"


def test_an_alert_over_the_previous_run_fires_on_the_run_after_it(settings, anthropic_api, hook) -> None:
    overrides = settings("alerts-previous", [REVENUE_DROP])
    answer(anthropic_api, DEMO_RESULTS)
    first = analyze(str(DEMO), overrides, as_of="2026-11-02T07:00")
    assert first["alerts"] == [] and hook.bodies == []  # nothing fired: nothing sent on `on: [alert]`

    answer(anthropic_api, DEMO_RESULTS | {"total_revenue": 2_000_000})
    second = analyze(str(DEMO), overrides, as_of="2026-11-09T07:00")

    assert second["alerts"] == ["revenue_drop: Revenue fell more than 10% since the last run "
                                "(total_revenue=2000000.0, previous.total_revenue=3385047.0)"]
    [event] = alert_events("alerts-previous", 1)
    assert event.payload["values"] == {"total_revenue": 2_000_000, "previous.total_revenue": 3385047}
    [received] = hook.wait_for(1)
    assert "- revenue_drop: Revenue fell more than 10% since the last run" in received["json"]["text"]
    assert len(hook.bodies) == 1


def test_data_that_fails_its_schema_can_fire_an_alert(settings, anthropic_api, hook, tmp_path) -> None:
    bad_config = demo_with_an_invalid_row(tmp_path / "bad")
    bad_data = {"name": "bad_data", "when": "validation.failed and status == 'validation_failed'",
                "message": "The sales data failed its schema"}

    with pytest.raises(DataInvalid):
        analyze(str(bad_config), settings("alerts-invalid", [bad_data, REVENUE_DROP]))

    [event] = alert_events("alerts-invalid", 1)
    assert event.payload["values"] == {"validation.failed": True, "status": "validation_failed"}
    [received] = hook.wait_for(1)
    text = received["json"]["text"]
    assert text.startswith("analysis alerts-invalid: validation failed, 1 alert(s)\n")
    assert "- bad_data: The sales data failed its schema (validation.failed=True, status=validation_failed)" in text
    assert anthropic_api.requests == []  # the model was never asked
