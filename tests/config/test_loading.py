"""Config loading: every bad input is one line naming the file, the key and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tasks.config import config_warnings, load_config, parse_overrides
from tasks.errors import ConfigError
from tasks.prefect.schedules import prefect_schedule

GOOD = """
name: weekly-sales
description: Weekly look at sales
tags: [sales, weekly]
datasets:
  - name: sales
    path: data.csv
    schema:
      schema_type: dataframe
      columns:
        a: {dtype: int64}
prompt: What happened?
model:
  name: claude-sonnet-5-5
  max_iterations: 4
sandbox:
  timeout: 30
  memory: 1GiB
schedule:
  cron: "0 7 * * 1"
  timezone: Europe/Paris
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "data.csv").write_text("a\n1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, text: str, name: str = "analysis.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path, overrides: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return [str(p) for p in info.value.problems]


def test_good_config_loads_with_defaults_and_resolved_paths(folder: Path) -> None:
    loaded = load_config(write(folder, GOOD))
    config = loaded.config
    assert config.name == "weekly-sales"
    assert config.datasets[0].format == "csv"
    assert config.datasets[0].on_invalid == "fail"
    assert config.model.max_iterations == 4 and config.model.max_tokens == 16_000
    assert config.sandbox.memory_bytes == 1024**3 and config.sandbox.isolation == "bubblewrap"
    assert prefect_schedule(config.schedule).cron == "0 7 * * 1"
    assert loaded.resolve(config.datasets[0].path) == folder / "data.csv"
    assert loaded.outputs_dir == folder / "outputs"
    assert config_warnings(config) == []


def test_yaml_syntax_error_names_line(folder: Path) -> None:
    [line] = problems(write(folder, "name: x\ndatasets: [\n"))
    assert line.startswith(str(folder / "analysis.yaml") + ": line ")
    assert "invalid YAML" in line


def test_unknown_key_suggests_the_close_one(folder: Path) -> None:
    [line] = problems(write(folder, GOOD.replace("  max_iterations: 4", "  max_iteration: 4")))
    assert "model.max_iteration: unknown key; did you mean 'max_iterations'?" in line


def test_every_problem_is_reported_at_once(folder: Path) -> None:
    text = GOOD.replace("name: weekly-sales", "name: Weekly Sales").replace("timeout: 30", "timeout: soon")
    text = text.replace("on_invalid", "x").replace("    path: data.csv", "    path: data.csv\n    on_invalid: maybe")
    lines = problems(write(folder, text))
    assert len(lines) == 3, lines
    assert any(": name: 'Weekly Sales' is not a slug" in line for line in lines)
    assert any(": sandbox.timeout: " in line and "'soon'" in line for line in lines)
    assert any(": datasets[0].on_invalid: " in line and "'fail' or 'warn'" in line for line in lines)


def test_wrong_type_and_missing_required_keys(folder: Path) -> None:
    lines = problems(write(folder, "name: x\ndatasets: {}\n"))
    assert any("datasets: " in line and "list" in line for line in lines)
    assert any(line.endswith("prompt: required key is missing") for line in lines)


def test_missing_dataset_and_schema_files_are_named(folder: Path) -> None:
    text = GOOD.replace("path: data.csv", "path: nope/data.csv")
    [line] = problems(write(folder, text))
    assert f"datasets[0].path: file not found: {folder / 'nope' / 'data.csv'}" in line
    text = GOOD.replace("    schema:\n      schema_type: dataframe\n      columns:\n        a: {dtype: int64}",
                        "    schema: schemas/missing.yaml")
    [line] = problems(write(folder, text))
    assert "datasets[0].schema: schema file not found" in line


def test_only_local_files_are_looked_for_at_load(folder: Path) -> None:
    """A query, an object store URL and a glob name no local file: loading does not look for one."""
    for source in ("sql: {query: select 1 as a, connection: {env: DB_URL}}", "path: s3://bucket/sales.csv",
                   "path: 'nope/*.csv'\n    combine: concat"):
        loaded = load_config(write(folder, GOOD.replace("path: data.csv", source)))
        assert loaded.config.datasets[0].name == "sales"


def test_format_must_be_inferable(folder: Path) -> None:
    (folder / "data.xyz").write_text("a\n1\n")
    [line] = problems(write(folder, GOOD.replace("path: data.csv", "path: data.xyz")))
    assert "set 'format' to one of csv, parquet, json, xlsx" in line


def test_env_variables_from_environment_and_dotenv(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYST_TEST_PROMPT", "from env")
    (folder / ".env").write_text("ANALYST_TEST_MODEL=claude-haiku-5-5\n")
    text = GOOD.replace("prompt: What happened?", "prompt: ${ANALYST_TEST_PROMPT}")
    text = text.replace("name: claude-sonnet-5-5", "name: ${ANALYST_TEST_MODEL}")
    text = text.replace("description: Weekly look at sales", "description: ${ANALYST_UNSET:-fallback} $${LITERAL}")
    config = load_config(write(folder, text)).config
    assert config.prompt == "from env"
    assert config.model.name == "claude-haiku-5-5"
    assert config.description == "fallback ${LITERAL}"
    # Read for interpolation only: a .env value is not exported to this process (nor to sandboxes).
    import os

    assert "ANALYST_TEST_MODEL" not in os.environ


def test_unset_variable_names_it_and_its_key(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANALYST_NOT_SET", raising=False)
    [line] = problems(write(folder, GOOD.replace("What happened?", "${ANALYST_NOT_SET}")))
    assert line.endswith("prompt: environment variable ANALYST_NOT_SET is not set; set it or add it to .env")


def test_overrides_apply_like_the_cli_set_flag(folder: Path) -> None:
    overrides = parse_overrides(["model.max_iterations=2", "datasets.0.on_invalid=warn", "sandbox.cpus=2"])
    config = load_config(write(folder, GOOD), overrides).config
    assert (config.model.max_iterations, config.datasets[0].on_invalid, config.sandbox.cpus) == (2, "warn", 2)
    lines = problems(write(folder, GOOD), parse_overrides(["model.max_iterations=many"]))
    assert "model.max_iterations" in lines[0]
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_overrides(["model.max_iterations"])


def test_deprecated_model_draws_a_warning_with_its_end_of_life(folder: Path) -> None:
    config = load_config(write(folder, GOOD.replace("claude-sonnet-5-5", "claude-sonnet-4-5"))).config
    [warning] = config_warnings(config)
    assert "claude-sonnet-4-5" in warning and "November 30th, 2026" in warning


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ("cron: '61 * * * *'", "Invalid cron string"),
        ("interval: 1h\n  cron: '0 * * * *'", "exactly one of cron, interval, rrule"),
        ("interval: soon", "expected a duration"),
        ("rrule: 'FREQ=SOMETIMES'", "Invalid RRule"),
        ("interval: 30m\n  timezone: Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_schedules(folder: Path, schedule: str, expected: str) -> None:
    text = GOOD.replace('cron: "0 7 * * 1"\n  timezone: Europe/Paris', schedule)
    lines = problems(write(folder, text))
    assert any(line.startswith(f"{folder / 'analysis.yaml'}: schedule") and expected in line for line in lines), lines


def test_interval_schedule_converts_to_prefect(folder: Path) -> None:
    text = GOOD.replace('cron: "0 7 * * 1"', "interval: 30m")
    schedule = prefect_schedule(load_config(write(folder, text)).config.schedule)
    assert schedule.interval.total_seconds() == 1800


def test_not_a_mapping_and_not_a_file(folder: Path) -> None:
    [line] = problems(write(folder, "- just\n- a list\n"))
    assert "expected a mapping" in line
    [line] = problems(folder / "absent.yaml")
    assert "no such file" in line


def test_temperature_is_refused_at_load_with_the_fix(folder: Path) -> None:
    # anthropic 2.14's messages.stream() takes no temperature: say so before any run starts.
    [line] = problems(write(folder, GOOD.replace("  max_iterations: 4", "  max_iterations: 4\n  temperature: 0.2")))
    assert "model.temperature: no longer supported" in line and "remove model.temperature" in line


@pytest.mark.parametrize("source", [
    "sql: {query: SELECT 1, connection: {env: SALES_DB_URL}}",
    "path: 's3://bucket/sales.parquet'",
    "path: 'exports/*.csv'\n    combine: concat",
])
def test_datasets_read_at_run_time_are_not_looked_for_as_local_files(folder: Path, source: str) -> None:
    loaded = load_config(write(folder, GOOD.replace("path: data.csv", source)))
    assert loaded.config.datasets[0].path != "data.csv"
