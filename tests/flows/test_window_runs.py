"""`analyst run --as-of`: a run of an earlier period reads that period's file and says so to the model, and
records its time and window everywhere (run folder, transcript, report, summary, Prefect tag)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
TRANSCRIPT = ROOT / "configs" / "retail-sales.transcript.json"

WEEKLY = """
window: {length: 7d, align: week}
prompt: |
  Review café sales for the week of {{ window.start | date('%d') }}–{{ window.last_day | date('%d %B %Y') }}.
"""


def weekly_demo(folder: Path, week: str = "2026-11-23") -> Path:
    """The demo with one data file per week, named after the week's first day, and a prompt naming it."""
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    shutil.move(folder / "data" / "retail_sales.csv", folder / "data" / f"sales-{week}.csv")
    config = folder / "retail-sales.yaml"
    text = config.read_text().replace("path: data/retail_sales.csv",
                                      "path: \"data/sales-{{ window.start | date('%Y-%m-%d') }}.csv\"")
    head, _, rest = text.partition("prompt: |")
    rest = rest[rest.index("\nmodel:"):]  # drop the demo's own prompt
    config.write_text(head + WEEKLY + rest)
    return config


@pytest.mark.slow
def test_run_as_of_reads_that_weeks_file_and_names_its_dates(cli, prefect_api, tmp_path) -> None:
    config = weekly_demo(tmp_path / "configs")
    result = cli("run", config, "--as-of", "2026-11-30T07:00", "--replay", TRANSCRIPT, "--json",
                 "--set", f"outputs.dir={tmp_path / 'out'}", "--set", "model.max_iterations=1")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    # Paris time (the schedule's zone): Monday 30 November 07:00 covers Monday 23 to Sunday 29.
    assert summary["run_time"] == {"as_of": "2026-11-30T07:00:00+01:00", "window": {
        "start": "2026-11-23T00:00:00+01:00", "end": "2026-11-30T00:00:00+01:00", "last_day": "2026-11-29"}}
    run_dir = Path(summary["run_dir"])
    assert "-2026-11-23..2026-11-29-" in run_dir.name

    transcript = json.loads((run_dir / "transcript.json").read_text())
    assert transcript["run_time"] == summary["run_time"]
    first_user = next(m for m in transcript["messages"] if m["role"] == "user")
    text = first_user["content"] if isinstance(first_user["content"], str) else \
        " ".join(b.get("text", "") for b in first_user["content"])
    assert "the week of 23–29 November 2026" in text
    assert transcript["datasets"][0]["source"].endswith("sales-2026-11-23.csv")
    assert "**Window:** 2026-11-23 to 2026-11-29 (as of 2026-11-30T07:00:00+01:00)" in \
        (run_dir / "report.md").read_text()

    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(summary["flow_run_id"])
    assert "window:2026-11-23..2026-11-29" in run.tags
    assert run.name == "retail-sales@2026-11-30T07:00:00+01:00"

    # Another week has no file: the error names the path that week would read.
    earlier = cli("run", config, "--as-of", "2026-11-23T07:00", "--replay", TRANSCRIPT,
                  "--set", f"outputs.dir={tmp_path / 'out'}")
    assert earlier.exit_code == 2, earlier.output
    assert "datasets[0].path: file not found:" in earlier.output and "sales-2026-11-16.csv" in earlier.output


@pytest.mark.slow
def test_a_resumed_run_keeps_the_period_of_the_run_it_goes_on_from(prefect_api, anthropic_api, monkeypatch,
                                                                   tmp_path) -> None:
    from flows.analysis import analyze
    from tasks.errors import ModelError

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-window")
    config = weekly_demo(tmp_path / "configs", week="2026-11-02")  # a week that is not the current one
    overrides = {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out")}
    anthropic_api.enqueue_tool_use(code="print(1)")
    anthropic_api.enqueue_error(401, message="invalid x-api-key")
    with pytest.raises(ModelError):
        analyze(str(config), overrides, as_of="2026-11-09T07:00")
    [run_dir] = (tmp_path / "out" / "retail-sales").glob("*/")

    anthropic_api.enqueue_text("# Report\nDone.")
    # No as_of: only the earlier run's week has a file, and its time is the one resumed.
    result = analyze(str(config), overrides, resume=str(run_dir))
    assert result["status"] == "completed"
    assert result["run_time"]["as_of"] == "2026-11-09T07:00:00+01:00"
