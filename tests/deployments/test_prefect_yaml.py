"""`analyst deploy --prefect-yaml` writes a prefect.yaml that Prefect's own `prefect deploy --all` deploys as is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deployments.test_deployments import copy_demo
from tests.deployments.test_deployments import read_deployment as read
from tests.deployments.test_spec import ANTHROPIC_KEY, DAYTONA_KEY, write_env

PREFECT = str(Path(sys.executable).with_name("prefect"))


@pytest.mark.slow
def test_prefect_deploy_all_registers_what_the_configs_declare(cli, prefect_api, tmp_path) -> None:
    folder = tmp_path / "configs"
    weekly = copy_demo(folder, "yaml-weekly")
    hourly = copy_demo(folder, "yaml-hourly")
    hourly.write_text(hourly.read_text().replace('cron: "0 7 * * 1"', "interval: 1h").replace(
        "timezone: Europe/Paris", "timezone: America/New_York") + "\nconcurrency:\n  runs: 2\n  when_busy: cancel\n")
    write_env(folder)  # keys in .env: they must not reach the file nor the server

    target = tmp_path / "deploy" / "prefect.yaml"
    result = cli("deploy", folder, "--prefect-yaml", target, "--work-pool", "yaml-pool")
    assert result.exit_code == 0, result.output
    assert f"prefect deploy --all --prefect-file {target}" in result.output
    text = target.read_text()
    assert ANTHROPIC_KEY not in text and DAYTONA_KEY not in text

    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    for command in ([PREFECT, "work-pool", "create", "yaml-pool", "--type", "process"],
                    # From another folder: the entrypoint is a module path, not a file path relative to here.
                    [PREFECT, "--no-prompt", "deploy", "--all", "--prefect-file", str(target)]):
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr

    first, second = read("analyze/yaml-weekly"), read("analyze/yaml-hourly")
    assert first.parameters == {"config": str(weekly)} and second.parameters == {"config": str(hourly)}
    assert first.entrypoint == "flows.analysis.analyze" and first.work_pool_name == "yaml-pool"
    assert first.tags == ["demo", "sales"] and first.description == "Weekly review of café sales by region and product"
    [cron] = first.schedules
    assert (cron.schedule.cron, cron.schedule.timezone, cron.active) == ("0 7 * * 1", "Europe/Paris", True)
    [interval] = second.schedules
    assert (interval.schedule.interval.total_seconds(), interval.schedule.timezone) == (3600, "America/New_York")
    assert first.global_concurrency_limit.limit == 1 and first.concurrency_options.collision_strategy == "ENQUEUE"
    assert second.global_concurrency_limit.limit == 2 and second.concurrency_options.collision_strategy == "CANCEL_NEW"
    for deployment in (first, second):
        stored = deployment.model_dump_json()
        assert not deployment.pull_steps
        assert deployment.job_variables == {"env": {"PREFECT_FLOWS_DEFAULT_RETRIES": "0",
                                                    "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS": "30"}}
        assert ANTHROPIC_KEY not in stored and DAYTONA_KEY not in stored
