"""What a deployment carries beyond its schedule: its concurrency limit, no secret, and one sandbox cap for all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from deployments import build_deployment, prefect_yaml, sandbox_cap
from tasks.config import load_config
from tasks.errors import ConfigError
from tests.deployments.test_deployments import copy_demo

ANTHROPIC_KEY = "sk-ant-api03-not-a-real-key-0123456789"
DAYTONA_KEY = "dtn_not_a_real_key_abcdef0123456789"
WAREHOUSE_PASSWORD = "hunter2-not-a-real-password"  # any secret-named variable, not only the two API keys


def set_concurrency(config: Path, block: str) -> Path:
    config.write_text(config.read_text() + f"\nconcurrency:\n{block}")
    return config


def test_runs_of_one_deployment_do_not_overlap_by_default(tmp_path) -> None:
    deployment = build_deployment(copy_demo(tmp_path, "serial"))
    assert deployment.concurrency_limit == 1
    assert deployment.concurrency_options.collision_strategy == "ENQUEUE"  # the second run waits


def test_the_config_sets_runs_at_once_and_what_a_busy_run_does(tmp_path) -> None:
    config = set_concurrency(copy_demo(tmp_path, "parallel"), "  runs: 3\n  when_busy: cancel\n")
    deployment = build_deployment(config)
    assert deployment.concurrency_limit == 3
    assert deployment.concurrency_options.collision_strategy == "CANCEL_NEW"


@pytest.mark.parametrize("block, key", [
    ("  runs: 0\n", "concurrency.runs"), ("  when_busy: queue\n", "concurrency.when_busy"),
    ("  sandboxes: 0\n", "concurrency.sandboxes"), ("  run: 2\n", "concurrency.run"),
])
def test_bad_concurrency_keys_are_named(tmp_path, block, key) -> None:
    config = set_concurrency(copy_demo(tmp_path, "bad"), block)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    [problem] = caught.value.problems
    assert (problem.file, problem.key) == (str(config), key)


def test_configs_that_disagree_on_the_sandbox_cap_are_an_error_naming_both(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANALYST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    first = set_concurrency(copy_demo(tmp_path / "a", "first"), "  sandboxes: 2\n")
    same = set_concurrency(copy_demo(tmp_path / "b", "same"), "  sandboxes: 2\n")
    unset = copy_demo(tmp_path / "c", "unset")
    other = set_concurrency(copy_demo(tmp_path / "d", "other"), "  sandboxes: 3\n")
    assert sandbox_cap([load_config(p) for p in (unset, first, same)])[0] == 2
    assert sandbox_cap([load_config(unset)]) is None

    for command in ("deploy", "serve"):
        result = cli(command, first, unset, other)
        assert result.exit_code == 2, result.output
        assert (f"{other}: concurrency.sandboxes: 3 disagrees with 2 in {first}; it is one limit for all analyses "
                "on the server") in result.output
    assert not (tmp_path / "home").exists()  # refused before any server starts


def write_env(folder: Path) -> None:
    (folder / ".env").write_text(f"ANTHROPIC_API_KEY={ANTHROPIC_KEY}\nDAYTONA_API_KEY={DAYTONA_KEY}\n"
                                 f"WAREHOUSE_PASSWORD={WAREHOUSE_PASSWORD}\n")


def test_no_secret_reaches_a_deployment_even_with_keys_in_env(tmp_path, monkeypatch) -> None:
    config = copy_demo(tmp_path, "keyed")
    write_env(tmp_path)
    config.write_text(config.read_text().replace("  name: claude-sonnet-5-5", "  name: claude-sonnet-5-5\n"
                                                 "  api_key_secret: anthropic-key"))
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_not_a_real_token_0123456789")
    loaded = load_config(config)
    deployment = build_deployment(loaded)
    stored = json.dumps([deployment.parameters, deployment.job_variables, deployment.description, deployment.tags])
    assert deployment.parameters == {"config": str(config)} and deployment.job_variables == {}
    text = prefect_yaml([loaded], "pool")
    for secret in (ANTHROPIC_KEY, DAYTONA_KEY, WAREHOUSE_PASSWORD, "ghp_not_a_real_token_0123456789"):
        assert secret not in stored and secret not in text
    assert "anthropic-key" not in stored  # even the block's name stays in the file, read at run time


@pytest.mark.parametrize("field, yaml_text, name", [
    ("description", "description: Weekly review, warehouse login ${WAREHOUSE_PASSWORD}", "WAREHOUSE_PASSWORD"),
    ("tags[1]", "tags: [demo, \"${SLACK_TOKEN}\"]", "SLACK_TOKEN"),
])
def test_a_secret_pulled_into_a_deployment_field_is_refused_with_the_fix(tmp_path, monkeypatch, field, yaml_text,
                                                                        name) -> None:
    """The API keys themselves cannot even be referenced in a config (the loader refuses ${ANTHROPIC_API_KEY});
    any other secret-named variable can, and must not end up in the deployment stored on the server."""
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-not-a-real-slack-token")
    config = copy_demo(tmp_path, "leaky")
    write_env(tmp_path)
    lines = config.read_text().splitlines()
    key = field.split("[")[0]
    config.write_text("\n".join(yaml_text if line.startswith(f"{key}:") else line for line in lines))
    loaded = load_config(config)  # a valid config: only deploying it would store the secret
    for build in (build_deployment, lambda item: prefect_yaml([item])):
        with pytest.raises(ConfigError) as caught:
            build(loaded)
        [problem] = caught.value.problems
        assert (problem.file, problem.key) == (str(config), field)
        assert problem.message.startswith(f"holds the value of {name} (from the environment or .env)")
        assert f"remove ${{{name}}} from {field}" in problem.message
        assert "Prefect Secret blocks (model.api_key_secret, sandbox.api_key_secret)" in problem.message
        assert WAREHOUSE_PASSWORD not in str(caught.value) and "xoxb-not" not in str(caught.value)


def test_the_prefect_yaml_holds_every_deployment_field(tmp_path) -> None:
    weekly = copy_demo(tmp_path, "weekly")
    hourly = set_concurrency(copy_demo(tmp_path, "hourly"), "  runs: 2\n  when_busy: cancel\n")
    hourly.write_text(hourly.read_text().replace('cron: "0 7 * * 1"', "interval: 1h"))
    document = yaml.safe_load(prefect_yaml([load_config(weekly), load_config(hourly)], "night-pool"))
    assert document["pull"] == [] and document["build"] is None
    first, second = document["deployments"]
    assert first == {
        "name": "weekly", "entrypoint": "flows.analysis.analyze",
        "description": "Weekly review of café sales by region and product", "tags": ["demo", "sales"],
        "parameters": {"config": str(weekly)},
        "schedules": [{"cron": "0 7 * * 1", "timezone": "Europe/Paris", "active": True}],
        "concurrency_limit": {"limit": 1, "collision_strategy": "ENQUEUE"},
        # The config's retries (default 0), for the workers, which import the flow afresh.
        "work_pool": {"name": "night-pool", "job_variables": {"env": {
            "PREFECT_FLOWS_DEFAULT_RETRIES": "0", "PREFECT_FLOWS_DEFAULT_RETRY_DELAY_SECONDS": "30"}}},
    }
    assert second["schedules"] == [{"interval": 3600.0, "timezone": "Europe/Paris", "active": True}]
    assert second["concurrency_limit"] == {"limit": 2, "collision_strategy": "CANCEL_NEW"}


def test_the_prefect_yaml_goes_to_the_file_named_or_into_the_folder(tmp_path) -> None:
    from deployments import write_prefect_yaml

    loaded = [load_config(copy_demo(tmp_path / "configs", "weekly"))]
    assert write_prefect_yaml(tmp_path / "deploy.yml", loaded) == tmp_path / "deploy.yml"
    assert write_prefect_yaml(tmp_path / "new-folder", loaded) == tmp_path / "new-folder" / "prefect.yaml"
    (tmp_path / "there").mkdir()
    written = write_prefect_yaml(tmp_path / "there", loaded)
    assert written == tmp_path / "there" / "prefect.yaml"
    assert yaml.safe_load(written.read_text())["deployments"][0]["work_pool"]["name"] == "analyses"
