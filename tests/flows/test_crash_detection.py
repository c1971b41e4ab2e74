"""The crash-detection automation on a real Prefect server: created once, widened, never narrowed.
(That it marks a killed run Crashed is shown end to end in test_resume.py.)"""

from __future__ import annotations

from datetime import timedelta

from prefect import get_client
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from flows.crash_detection import AUTOMATION_NAME, ensure_crash_detection


def automations():
    with get_client(sync_client=True) as client:
        return client.read_automations_by_name(AUTOMATION_NAME)


def test_the_automation_is_created_then_only_widened(prefect_api) -> None:
    with get_client(sync_client=True) as client:
        for automation in automations():
            client.delete_automation(automation.id)

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 60}):
        assert ensure_crash_detection() == "created"
        assert ensure_crash_detection() == "present"
    [automation] = automations()
    assert automation.trigger.within == timedelta(seconds=120) and automation.enabled
    assert automation.trigger.after == {"prefect.flow-run.heartbeat"}
    assert {"prefect.flow-run.Completed", "prefect.flow-run.AwaitingRetry"} <= automation.trigger.expect
    assert automation.actions[0].state.value == "CRASHED"

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 200}):
        assert ensure_crash_detection() == "widened"
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}):
        assert ensure_crash_detection() == "present"  # a shorter window would crash the others' live runs
    [automation] = automations()
    assert automation.trigger.within == timedelta(seconds=400)
