"""Configs -> deployments ``analyze/<name>``: what they carry, what is rejected, and the CLI against a real server."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from deployments import build_deployment, build_deployments, describe_schedule, find_configs
from tasks.config import ScheduleConfig
from tasks.errors import ConfigError
from tests.serving import serving

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"


def copy_demo(folder: Path, name: str) -> Path:
    """The demo config, its data and schemas in ``folder``, renamed ``name``: its own deployment."""
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"), dirs_exist_ok=True)
    config = folder / "retail-sales.yaml"
    renamed = folder / f"{name}.yaml"
    renamed.write_text(config.read_text().replace("name: retail-sales", f"name: {name}"))
    if renamed != config:
        config.unlink()
    return renamed


def test_the_demo_config_becomes_its_deployment(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    deployment = build_deployment("configs/retail-sales.yaml")  # relative, as a user types it
    assert (deployment.flow_name, deployment.name) == ("analyze", "retail-sales")
    assert deployment.parameters == {"config": str(DEMO)}  # absolute: runs work from any folder
    assert Path(deployment.parameters["config"]).is_absolute()
    assert deployment.tags == ["demo", "sales"]
    assert deployment.description == "Weekly review of café sales by region and product"
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("0 7 * * 1", "Europe/Paris")
    assert schedule.active
    # A module path, not a file path relative to this folder: a process worker runs in a temporary folder.
    assert deployment.entrypoint == "flows.analysis.analyze"
    assert deployment.work_pool_name is None


def test_a_config_without_schedule_runs_only_when_triggered(tmp_path) -> None:
    config = copy_demo(tmp_path, "on-demand")
    config.write_text(config.read_text().split("schedule:")[0])
    deployment = build_deployment(config)
    assert deployment.schedules == [] and deployment.name == "on-demand"
    assert describe_schedule(None) == "no schedule (runs only when triggered)"


def test_a_folder_yields_its_analysis_configs_only(tmp_path) -> None:
    assert find_configs([ROOT / "configs"]) == [DEMO]  # schemas/ is a sub-folder, the transcript is JSON
    copy_demo(tmp_path, "weekly")
    copy_demo(tmp_path, "daily")
    shutil.copy(ROOT / "configs" / "schemas" / "retail_sales.schema.yaml", tmp_path / "stray.schema.yaml")
    (tmp_path / "notes.yml").write_text("just: a note\n")
    assert [p.name for p in find_configs([tmp_path, tmp_path / "weekly.yaml"])] == ["daily.yaml", "weekly.yaml"]
    assert sorted(d.name for d in build_deployments([tmp_path])) == ["daily", "weekly"]


def test_two_configs_with_one_name_are_rejected_naming_both_files(tmp_path) -> None:
    first = copy_demo(tmp_path / "a", "weekly")
    second = copy_demo(tmp_path / "b", "weekly")
    with pytest.raises(ConfigError) as caught:
        build_deployments([first, second])
    [problem] = caught.value.problems
    assert problem.file == str(second) and problem.key == "name"
    assert str(first) in problem.message and "'weekly'" in problem.message


def test_every_problem_of_every_file_is_reported_together(tmp_path) -> None:
    (tmp_path / "bad.yaml").write_text("name: Not A Slug\nprompt: x\ndatasets: []\nmodel: {max_iteratons: 3}\n")
    (tmp_path / "worse.yaml").write_text("name: worse\nprompt: ''\ndatasets: [{name: d, path: nope.csv, schema: {}}]\n"
                                         "schedule: {cron: '0 7 * * 1', interval: 1h}\n")
    (tmp_path / "broken.yml").write_text("name: [unclosed\n")
    (tmp_path / "schema.yaml").write_text("schema_type: dataframe\ncolumns: {}\n")  # not a config: skipped
    with pytest.raises(ConfigError) as caught:
        build_deployments([tmp_path, tmp_path / "missing.yaml"])
    lines = [str(p) for p in caught.value.problems]
    assert lines == [f"{tmp_path / 'missing.yaml'}: no such file or folder; expected an analysis YAML config "
                     "or a folder of them"]  # a missing path stops before any file is read

    with pytest.raises(ConfigError) as caught:
        build_deployments([tmp_path])
    by_file = {(Path(p.file).name, p.key) for p in caught.value.problems}
    assert {("bad.yaml", "name"), ("bad.yaml", "datasets"), ("bad.yaml", "model.max_iteratons")} <= by_file
    assert {("worse.yaml", "prompt"), ("worse.yaml", "schedule")} <= by_file
    assert any(Path(p.file).name == "broken.yml" and "invalid YAML" in p.message for p in caught.value.problems)
    assert not any(Path(p.file).name == "schema.yaml" for p in caught.value.problems)


def test_an_empty_folder_is_an_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no analysis configs here"):
        find_configs([tmp_path])


def test_schedules_in_words() -> None:
    monday_morning = datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Europe/Paris"))
    cron = ScheduleConfig(cron="0 7 * * 1", timezone="Europe/Paris")
    assert describe_schedule(cron, now=monday_morning) == \
        "At 07:00 on Monday (Europe/Paris); cron '0 7 * * 1'; next 2026-11-30 07:00 CET"
    assert describe_schedule(ScheduleConfig(interval="90m")) == "every 1 hour 30 minutes"
    assert describe_schedule(ScheduleConfig(interval=86400)) == "every 1 day"
    assert describe_schedule(ScheduleConfig(rrule="FREQ=DAILY")) == "RRULE FREQ=DAILY (UTC)"


def test_deploy_with_a_bad_config_exits_2_before_starting_a_server(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANALYST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    (tmp_path / "bad.yaml").write_text("name: x\nprompt: y\ndatasets: [{name: d, path: nope.csv, schema: {}}]\n")
    for command in ("deploy", "serve"):
        result = cli(command, tmp_path / "bad.yaml")
        assert result.exit_code == 2, result.output
        assert f"{tmp_path / 'bad.yaml'}: datasets[0].path: file not found" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "home").exists()


# --- against the session's local Prefect server ------------------------------------------------


def read_deployment(name: str):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


@pytest.mark.slow
def test_deploy_registers_the_demo_with_its_schedule(cli, prefect_api, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    result = cli("deploy", "configs/retail-sales.yaml")
    assert result.exit_code == 0, result.output
    assert "prefect deployment run analyze/retail-sales" in result.output
    assert "At 07:00 on Monday (Europe/Paris)" in result.output

    deployment = read_deployment("analyze/retail-sales")
    assert f"{prefect_api.removesuffix('/api')}/v2/deployments/deployment/{deployment.id}" in result.output
    assert deployment.parameters == {"config": str(DEMO)}
    assert deployment.tags == ["demo", "sales"] and deployment.entrypoint == "flows.analysis.analyze"
    assert not deployment.paused
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("0 7 * * 1", "Europe/Paris", True)

    assert cli("deploy", "configs/retail-sales.yaml").exit_code == 0  # again: updated, not duplicated
    again = read_deployment("analyze/retail-sales")
    assert again.id == deployment.id and len(again.schedules) == 1


@pytest.mark.slow
def test_deploy_to_a_work_pool_creates_a_process_pool(cli, prefect_api, tmp_path) -> None:
    from prefect import get_client

    config = copy_demo(tmp_path, "pooled-sales")
    result = cli("deploy", config, "--work-pool", "analyst-test-pool")
    assert result.exit_code == 0, result.output
    assert "Work pool 'analyst-test-pool' (process): created" in result.output
    assert "prefect worker start --pool analyst-test-pool" in result.output
    deployment = read_deployment("analyze/pooled-sales")
    assert deployment.work_pool_name == "analyst-test-pool"
    assert deployment.parameters == {"config": str(config)} and deployment.pull_steps in (None, [])
    with get_client(sync_client=True) as client:
        assert client.read_work_pool("analyst-test-pool").type == "process"
    assert "(process): exists" in cli("deploy", config, "--work-pool", "analyst-test-pool").output


@pytest.mark.slow
def test_a_served_deployment_runs_when_triggered(prefect_api, tmp_path) -> None:
    """`analyst serve` in a subprocess, then `run_deployment` (what `prefect deployment run` does)."""
    from prefect.deployments import run_deployment

    config = copy_demo(tmp_path / "configs", "served-sales")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_RUNNER_POLL_FREQUENCY": "1", "COLUMNS": "200"}
    with serving([config.name], env, cwd=config.parent, timeout=60) as served:  # a relative path
        assert "prefect deployment run analyze/served-sales" in served.output

        flow_run = run_deployment(
            "analyze/served-sales", timeout=120,
            parameters={"replay": str(TRANSCRIPT), "overrides": {"outputs.dir": str(tmp_path / "out")}},
        )
        assert flow_run.state.is_completed(), flow_run.state
        assert flow_run.parameters["config"] == str(config)  # the absolute path, from the deployment
        assert len(list((tmp_path / "out" / "served-sales").glob("*/report.md"))) == 1
