"""The ``analyst`` command: exit statuses, error lines without tracebacks, JSON output."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"


@pytest.fixture
def broken_demo(tmp_path) -> Path:
    folder = tmp_path / "demo"
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    data = folder / "data" / "retail_sales.csv"
    lines = data.read_text().splitlines()
    lines[3] = lines[3].replace(",False", ",maybe")
    lines[6] = lines[6].replace("espresso", "mocha")
    data.write_text("\n".join(lines) + "\n")
    return folder / "retail-sales.yaml"


def test_help_lists_every_command(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("validate", "infer-schema", "run", "server"):
        assert command in result.output


def test_validate_exit_statuses(cli, broken_demo, tmp_path) -> None:
    ok = cli("validate", DEMO)
    assert ok.exit_code == 0, ok.output
    assert "14,620 rows x 7 columns" in ok.output and "valid" in ok.output

    invalid = cli("validate", broken_demo)
    assert invalid.exit_code == 1
    assert "first 2 of 2" in invalid.output
    assert "mocha" in invalid.output and "maybe" in invalid.output

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Not A Slug\nprompt: x\ndatasets: []\nmodel: {max_iteratons: 3}\n")
    config_error = cli("validate", bad)
    assert config_error.exit_code == 2
    assert f"{bad}: name: 'Not A Slug' is not a slug" in config_error.output
    assert f"{bad}: model.max_iteratons: unknown key; did you mean 'max_iterations'?" in config_error.output
    assert "Traceback" not in config_error.output


def test_run_with_a_bad_config_exits_2_before_starting_anything(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANALYST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nprompt: ${ANALYST_SURELY_UNSET}\ndatasets: [{name: d, path: nope.csv, schema: {}}]\n")
    result = cli("run", bad)
    assert result.exit_code == 2
    assert "prompt: environment variable ANALYST_SURELY_UNSET is not set" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "home").exists()  # no server was started for a config that cannot run


def test_infer_schema_drafts_a_schema_that_validates_its_data(cli, tmp_path) -> None:
    schema = tmp_path / "schema.yaml"
    result = cli("infer-schema", ROOT / "configs" / "data" / "retail_sales.csv", "-o", schema)
    assert result.exit_code == 0, result.output
    assert "schema_type: dataframe" in schema.read_text()
    shutil.copy(ROOT / "configs" / "data" / "retail_sales.csv", tmp_path / "sales.csv")
    config = tmp_path / "a.yaml"
    config.write_text("name: a\nprompt: x\ndatasets: [{name: s, path: sales.csv, schema: schema.yaml}]\n")
    assert cli("validate", config).exit_code == 0


@pytest.mark.slow
def test_run_json_replay(cli, prefect_api, tmp_path) -> None:
    result = cli("run", DEMO, "--replay", TRANSCRIPT, "--json", "--set", f"outputs.dir={tmp_path}")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed" and summary["iterations"] == 6
    assert summary["ui_url"].startswith(prefect_api.removesuffix("/api")) and summary["flow_run_id"] in summary["ui_url"]
    assert Path(summary["report"]).is_file() and summary["cost_usd"] == 0


@pytest.mark.slow
def test_run_with_invalid_data_exits_1_with_the_failure_table(cli, prefect_api, broken_demo, tmp_path) -> None:
    result = cli("run", broken_demo, "--replay", TRANSCRIPT, "--set", f"outputs.dir={tmp_path}")
    assert result.exit_code == 1
    assert "mocha" in result.output and "data invalid" in result.output
