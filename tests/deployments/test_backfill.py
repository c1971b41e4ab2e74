"""`analyst backfill`: one run of the served deployment per weekly occurrence, each covering its own week.

`analyst serve` runs in a subprocess against the session's real Prefect server; the model is the stand-in
Messages API on loopback, and each run's code sandbox is the real local one."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.deployments.test_deployments import copy_demo
from tests.deployments.test_served_runs import client, finished, transcript_of
from tests.serving import serving

pytestmark = pytest.mark.slow

WEEKS = [("2026-11-02T07:00:00+01:00", "2026-10-26", "2026-11-01", "26 October to 01 November"),
         ("2026-11-09T07:00:00+01:00", "2026-11-02", "2026-11-08", "02 November to 08 November"),
         ("2026-11-16T07:00:00+01:00", "2026-11-09", "2026-11-15", "09 November to 15 November")]


def weekly_config(folder: Path, base_url: str) -> Path:
    config = copy_demo(folder, "backfill-sales")
    text = config.read_text()
    head, _, rest = text.partition("prompt: |")
    rest = rest[rest.index("\nmodel:"):].replace("\nmodel:\n", f"\nmodel:\n  base_url: {base_url}\n", 1)
    config.write_text(head + "window: {length: 7d, align: week}\nprompt: |\n  Review the week of "
                      "{{ window.start | date('%d %B') }} to {{ window.last_day | date('%d %B') }}.\n" + rest)
    return config


def test_backfill_runs_each_weekly_occurrence_through_the_deployment(
        _local_prefect_server, prefect_api, anthropic_api, cli, tmp_path) -> None:
    config = weekly_config(tmp_path / "configs", anthropic_api.base_url)
    range_ = ("--from", "2026-11-01", "--to", "2026-11-16")

    missing = cli("backfill", config, *range_)
    assert missing.exit_code == 2, missing.output
    assert "no deployment analyze/backfill-sales" in missing.output and "analyst serve" in missing.output

    dry = cli("backfill", config, *range_, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert [line.split()[:3] for line in dry.output.splitlines()] == [
        [as_of, "window", f"{first}..{last}"] for as_of, first, last, _ in WEEKS]

    for _ in range(len(WEEKS) + 1):
        anthropic_api.enqueue_text("## Findings\nRevenue held steady.")
    env = {**os.environ, "PREFECT_API_URL": _local_prefect_server, "PREFECT_RUNNER_POLL_FREQUENCY": "1",
           "COLUMNS": "200", "ANTHROPIC_API_KEY": "sk-test-backfill"}
    with serving([config], env, timeout=300):
        result = cli("backfill", config, *range_, "--json")
        assert result.exit_code == 0, result.output
        runs = json.loads(result.stdout)["runs"]
        assert [r["as_of"] for r in runs] == [as_of for as_of, *_ in WEEKS]
        ended = [finished(r["flow_run_id"]) for r in runs]
        # A run the scheduler would have made (no as_of): its time is its scheduled start, not when it ran.
        from prefect.deployments import run_deployment

        scheduled = run_deployment("analyze/backfill-sales", timeout=0, as_subflow=False,
                                   scheduled_time=datetime(2026, 11, 23, 6, tzinfo=timezone.utc))
        assert finished(scheduled.id).state.is_completed()
    assert transcript_of(config.parent, "backfill-sales", scheduled.id)["run_time"] == {
        "as_of": "2026-11-23T07:00:00+01:00", "window": {
            "start": "2026-11-16T00:00:00+01:00", "end": "2026-11-23T00:00:00+01:00", "last_day": "2026-11-22"}}

    for flow_run, (as_of, first, last, prose) in zip(ended, WEEKS):
        assert flow_run.state.is_completed(), flow_run.state
        assert flow_run.deployment_id is not None  # through the deployment, like a scheduled run
        assert flow_run.expected_start_time.isoformat().startswith(as_of[:10])
        assert {"backfill", f"window:{first}..{last}"} <= set(flow_run.tags)
        transcript = transcript_of(config.parent, "backfill-sales", flow_run.id)
        assert transcript["run_time"]["as_of"] == as_of
        assert transcript["run_time"]["window"]["last_day"] == last
        assert f"Review the week of {prose}." in transcript["prompt"]
    with client() as c:
        assert c.read_deployment_by_name("analyze/backfill-sales").id == ended[0].deployment_id
