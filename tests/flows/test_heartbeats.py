"""A run that ``analyst run`` starts sends its flow run's heartbeats, once each period, from the flow."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"


@pytest.mark.slow
def test_analyst_run_sends_one_heartbeat_per_period_naming_its_flow_run_and_flow(cli, prefect_api, tmp_path) -> None:
    from prefect import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    result = cli("run", DEMO, "--replay", TRANSCRIPT, "--json", "--set", f"outputs.dir={tmp_path}")
    assert result.exit_code == 0, result.output
    flow_run_id = json.loads(result.stdout)["flow_run_id"]
    EventsWorker.drain_all()

    wanted = EventFilter(event=EventNameFilter(name=["prefect.flow-run.heartbeat"]),
                         resource=EventResourceFilter(id=[f"prefect.flow-run.{flow_run_id}"]))
    deadline = time.monotonic() + 60  # the server stores events in batches
    with get_client(sync_client=True) as client:
        while not (beats := client.read_events(filter=wanted, limit=10).events) and time.monotonic() < deadline:
            time.sleep(0.5)
        flow_run = client.read_flow_run(flow_run_id)
    # The run is far shorter than a period (30 s at least): one heartbeat, the one sent as it started.
    # Two would mean Prefect's engine sent its own as well; none, that nobody did.
    assert len(beats) == 1
    beat = beats[0]
    assert beat.resource.get("prefect.resource.name") == flow_run.name
    assert [(r.role, r.id) for r in beat.related if r.role == "flow"] == [("flow", f"prefect.flow.{flow_run.flow_id}")]
    assert flow_run.state is not None and flow_run.state.is_completed()
