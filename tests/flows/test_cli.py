"""The ``analyst`` command: exit statuses, error lines without tracebacks, JSON output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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


HEAVY = ("prefect", "anthropic", "pandas", "pandera", "polars", "matplotlib")


def test_the_cli_imports_none_of_the_heavy_libraries_until_a_command_needs_them() -> None:
    """Each costs about a second to import: `analyst --help` pays none, and `analyst run` pays them
    only once the config is loaded and found fine (it fails fast on a bad one)."""
    probe = ("import sys\nfrom cli import app\nfrom cli.run import run\nfrom cli.validate import validate\n"
             f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


def test_the_flow_imports_the_data_libraries_only_in_its_validation_step() -> None:
    """They take about a second, which a new run spends while its sandbox starts in the background."""
    probe = ("import sys\nimport flows.analysis\n"
             "print(sorted(m for m in ('pandas', 'pandera', 'polars') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


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
    assert summary["status"] == "completed" and summary["iterations"] == 7
    assert summary["results"] == {"total_revenue": 3385047, "revenue_change_pct": 19.3, "best_region": "east",
                                  "sudden_changes": 1}
    assert summary["ui_url"].startswith(prefect_api.removesuffix("/api"))
    assert summary["flow_run_id"] in summary["ui_url"]
    assert Path(summary["report"]).is_file() and summary["cost_usd"] == 0


@pytest.mark.slow
def test_run_with_invalid_data_exits_1_with_the_failure_table(cli, prefect_api, broken_demo, tmp_path) -> None:
    result = cli("run", broken_demo, "--replay", TRANSCRIPT, "--set", f"outputs.dir={tmp_path}")
    assert result.exit_code == 1
    assert "mocha" in result.output and "data invalid" in result.output


# What a model, a sandbox or a data file can send to the operator's terminal: a clipboard write, a screen
# clear, a window title, a bidi override, and brackets that rich would read as markup.
HOSTILE = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b]0;pwned\x07\u202e[/x] [old] df[[\"a\"]]\r"


def test_progress_strips_terminal_escapes_and_never_reads_markup(tmp_path) -> None:
    from io import StringIO
    from types import SimpleNamespace

    from rich.console import Console

    from cli.progress import LiveProgress
    from tasks.agent import events

    out = StringIO()
    progress = LiveProgress(Console(file=out, width=200, soft_wrap=True), "demo", 3)
    run_dir = str(tmp_path / "[/x] out [old]")
    turn = SimpleNamespace(usage=SimpleNamespace(total_tokens=0), cost_usd=None,
                           tool_calls=[{"name": "run_python_code"}])
    cell = SimpleNamespace(charts=[], error={"name": "Err\x1b[31m", "message": HOSTILE}, timed_out=False,
                           duration_s=0.1)
    with events.listening(progress._on_event):
        events.emit("started", {"flow_run_id": "f", "run_dir": run_dir})
        events.emit("model_turn", {"iteration": 1, "turn": turn, "text": HOSTILE + "\nmore"})
        events.emit("code_done", {"iteration": 1, "cell": cell})
    printed = out.getvalue()
    assert f"run folder {run_dir}" in printed
    assert "[/x] [old] df[[\"a\"]]" in printed and "Err:" in printed
    assert not any(c in printed for c in "\x1b\x07\r\u202e"), repr(printed)


def test_progress_names_a_results_submission_as_such() -> None:
    from io import StringIO
    from types import SimpleNamespace

    from rich.console import Console

    from cli.progress import LiveProgress
    from tasks.agent import events

    out = StringIO()
    progress = LiveProgress(Console(file=out, width=200, soft_wrap=True), "demo", 3)
    usage = SimpleNamespace(total_tokens=0)
    with events.listening(progress._on_event):
        for number, calls in enumerate(([{"name": "run_python_code"}] * 2, [{"name": "submit_results"}], []), 1):
            turn = SimpleNamespace(usage=usage, cost_usd=None, tool_calls=calls)
            events.emit("model_turn", {"iteration": number, "turn": turn, "text": "t"})
    lines = [line for line in out.getvalue().splitlines() if line.startswith("iteration")]
    assert [line.split(" Claude ")[1] for line in lines] == ["runs 2 code cells: t", "submits the results: t",
                                                             "answers: t"]


def test_a_failing_listener_never_fails_the_run() -> None:
    from tasks.agent import events

    seen = []

    def broken(kind, data):
        raise ValueError("display broke")

    with events.listening(broken), events.listening(lambda kind, data: seen.append(kind)):
        events.emit("started", {})
    assert seen == ["started"]  # the listeners after the failing one still hear it


def test_validate_shows_hostile_data_as_text(cli, broken_demo) -> None:
    data = broken_demo.parent / "data" / "retail_sales.csv"
    data.write_text(data.read_text().replace("mocha", "mo[/x]cha\x1b]52;c;eA==\x07\x1b[2J"))
    result = cli("validate", broken_demo)
    assert result.exit_code == 1, result.output
    assert "mo[/x]cha" in result.output and "\x1b" not in result.output


@pytest.mark.slow
def test_run_prints_a_folder_with_brackets_whole(cli, prefect_api, tmp_path) -> None:
    outputs = tmp_path / "[/x] runs [old]"
    result = cli("run", DEMO, "--replay", TRANSCRIPT, "--set", f"outputs.dir={outputs}")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # Not a terminal: plain "key: value" lines, each path and link whole on its line.
    folder = next(line.removeprefix("run folder: ") for line in lines if line.startswith("run folder: "))
    assert folder.startswith(str(outputs)) and Path(folder).is_dir()
    report = next(line.removeprefix("report: ") for line in lines if line.startswith("report: "))
    assert Path(report).is_file()
    assert "results: total_revenue = 3,385,047, revenue_change_pct = 19.3, best_region = east, sudden_changes = 1" \
        in lines
    assert any(line.startswith("Prefect UI: http") and line.count("/") >= 6 for line in lines)


def test_validate_json(cli, broken_demo) -> None:
    result = cli("validate", broken_demo, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["config"] == str(broken_demo) and summary["valid"] is False
    [dataset] = summary["datasets"]
    assert dataset["rows"] == 14620 and dataset["failure_count"] == 2
    assert {f["failure_case"] for f in dataset["failures"]} == {"maybe", "mocha"}


def test_server_status_json(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ANALYST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = cli("server", "status", "--json")
    assert result.exit_code == 1  # not running
    status = json.loads(result.stdout)
    assert status["state"] == "stopped" and status["pid"] is None
    assert status["database"].startswith(str(tmp_path / "home"))


def test_run_summary_outside_a_terminal_keeps_paths_and_links_whole(monkeypatch, tmp_path) -> None:
    from io import StringIO

    from cli._console import console
    from cli.run import _print_summary

    out = StringIO()  # not a terminal, as a CI log or a pipe
    monkeypatch.setattr(console, "_file", out)
    monkeypatch.setattr(console, "width", 40)
    run_dir = tmp_path / ("a-long-folder-name-" * 4)
    ui_url = "http://127.0.0.1:4200/v2/runs/flow-run/535bdd7b-404e-476d-aa25-025b35ac9dbc"
    _print_summary(console, {"status": "completed", "report": str(run_dir / "report.md"), "run_dir": str(run_dir),
                             "ui_url": ui_url, "iterations": 6})
    lines = out.getvalue().splitlines()
    assert lines == ["status: completed", f"report: {run_dir / 'report.md'}", f"run folder: {run_dir}",
                     f"Prefect UI: {ui_url}", "iterations: 6"]


def test_run_summary_names_the_alerts_right_under_the_status(monkeypatch) -> None:
    from io import StringIO

    from cli._console import console
    from cli.run import _print_summary

    out = StringIO()
    monkeypatch.setattr(console, "_file", out)
    monkeypatch.setattr(console, "width", 400)
    _print_summary(console, {"status": "completed", "alerts": [f"region: Best region changed (best_region={HOSTILE})",
                                                               "drop: Revenue fell (total_revenue=1.0)"]})
    lines = out.getvalue().splitlines()
    assert lines == ["status: completed", "alerts: region: Best region changed (best_region=[/x] [old] "
                     'df[["a"]]); drop: Revenue fell (total_revenue=1.0)']
