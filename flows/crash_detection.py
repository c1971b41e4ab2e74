"""Mark a flow run whose process died (SIGKILL, a lost machine) as Crashed on the Prefect server.

A killed process cannot report its own end: its run would stay Running forever. Every flow run
sends a heartbeat event every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (180 by default, 30 at
least; Prefect 3.9 does so for runs started by ``analyst run`` too, not only deployments). This
module keeps on the server the automation Prefect's docs give for "zombie" runs ("Detect zombie
flows"): after a heartbeat, if neither another heartbeat nor a final state arrives within the
window, the run is set to Crashed. A self-hosted server has no such automation built in.

The window is two heartbeat periods, so one late heartbeat (a busy machine) is not a crash. The
automation applies to every flow run on the server, so its window only ever grows: a process
with a longer heartbeat period widens it, and one with a shorter period never narrows it under
the others' heartbeats.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prefect import get_client
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import get_current_settings

log = logging.getLogger(__name__)

AUTOMATION_NAME = "analyst: mark unresponsive flow runs as crashed"
MISSED_HEARTBEATS = 2


def crash_window(heartbeat_seconds: int) -> timedelta:
    return timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds)


def ensure_crash_detection() -> str | None:
    """Create or widen the automation on the current Prefect server. Returns what was done
    ("created", "widened", "present"), or None when heartbeats are off or the server refused."""
    frequency = get_current_settings().flows.heartbeat_frequency
    if frequency is None:
        return None  # no heartbeats, nothing to watch
    window = crash_window(max(frequency, 30))  # Prefect sends at most one every 30 s
    try:
        with get_client(sync_client=True) as client:
            existing = client.read_automations_by_name(AUTOMATION_NAME)
            if existing and existing[0].trigger.within >= window:
                return "present"
            automation = _automation(window)
            if existing:
                client.update_automation(existing[0].id, automation)
                return "widened"
            client.create_automation(automation)
            return "created"
    except Exception as exc:  # noqa: BLE001 - never stop a run for this; the run itself is unaffected
        log.warning("Could not set up crash detection on the Prefect server (%s: %s); a killed run will "
                    "stay Running there until marked by hand", type(exc).__name__, exc)
        return None


def _automation(window: timedelta):
    return AutomationCore(
        name=AUTOMATION_NAME,
        description=("Created by analyst: a flow run that stops sending heartbeats without reaching a final "
                     f"state for {window.total_seconds():g} s is marked Crashed (its process died)."),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            # A final state ends the watch; so does waiting without a process (a retry's delay, a
            # pause): the next heartbeat, once it runs again, starts a new window.
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed", "prefect.flow-run.AwaitingRetry",
                    "prefect.flow-run.Paused", "prefect.flow-run.Suspended"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=window,
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message="No heartbeat from the process running this flow: it was killed or "
                                            "its machine was lost.")],
    )
