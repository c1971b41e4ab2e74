"""``outputs.keep_data`` end to end: a real Prefect server, the real anthropic SDK against the stand-in API,
the local sandbox. A replay or a resume of a run that kept its data reads the kept rows, not the source's
rows of the moment, and every run records what it read (the data fingerprint)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.analysis import analyze
from tasks.transcript import Transcript
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.flows.test_resume import copy_demo

pytestmark = pytest.mark.slow

COUNT_ROWS = "import pandas as pd\nprint(len(pd.read_csv('data/sales.csv')))"


@pytest.fixture
def env(prefect_api, anthropic_api, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-kept")
    return {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out")}


def add_rows(data: Path, count: int) -> None:
    """Valid rows at the end of the source: the table moved on after the run."""
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines + lines[1:count + 1]))


def test_a_replay_runs_on_the_kept_rows_after_the_source_changed(env, anthropic_api, tmp_path) -> None:
    config = copy_demo(tmp_path / "configs")
    data = tmp_path / "configs" / "data" / "retail_sales.csv"
    rows = len(data.read_text().splitlines()) - 1
    anthropic_api.enqueue_tool_use(code=COUNT_ROWS, results=DEMO_RESULTS)
    anthropic_api.enqueue_text("# Report\nCounted the rows.")
    first = analyze(str(config), env | {"outputs.keep_data": True})
    run_dir = Path(first["run_dir"])
    kept = run_dir / "data" / "sales.parquet"
    assert pl.read_parquet(kept).height == rows
    recorded = first["data"]["sales"]
    assert recorded["source"] == str(data) and recorded["rows"] == rows and recorded["kept"] == "data/sales.parquet"
    assert recorded["columns"][:2] == ["date", "region"] and recorded["content_hash"].startswith("sha256:")
    assert "window" in recorded

    add_rows(data, 5)
    replayed = analyze(str(config), env, replay=str(run_dir / "transcript.json"))
    assert replayed["status"] == "completed" and len(anthropic_api.requests) == 2  # the replay asked nothing
    transcript = Transcript.load(Path(replayed["run_dir"]) / "transcript.json")
    assert transcript.iterations[0].cells[0].stdout == f"{rows}\n"  # the kept rows, not the 5 added since
    record = transcript.data["sales"]
    assert record["rows"] == rows and record["read_from_kept"] == str(kept)
    report = (Path(replayed["run_dir"]) / "report.md").read_text()
    assert "### Data fingerprint" in report and "read from the kept data" in report
    assert f"{rows:,}" in report and record["content_hash"][:19] in report

    # Without kept data the same replay reads the source as it is now.
    kept.unlink()
    fresh = analyze(str(config), env, replay=str(run_dir / "transcript.json"))
    again = Transcript.load(Path(fresh["run_dir"]) / "transcript.json")
    assert again.iterations[0].cells[0].stdout == f"{rows + 5}\n" and "read_from_kept" not in again.data["sales"]


def test_a_resume_goes_on_with_the_kept_data_when_the_source_changed(env, anthropic_api, tmp_path) -> None:
    from tasks.errors import ConfigError, ModelError

    config = copy_demo(tmp_path / "configs")
    data = tmp_path / "configs" / "data" / "retail_sales.csv"
    rows = len(data.read_text().splitlines()) - 1
    anthropic_api.enqueue_tool_use(code=COUNT_ROWS)
    anthropic_api.enqueue_error(401, message="invalid x-api-key")
    keep = env | {"outputs.keep_data": True}
    with pytest.raises(ModelError):
        analyze(str(config), keep)
    [run_dir] = (Path(env["outputs.dir"]) / "retail-sales").glob("*/")

    add_rows(data, 5)  # read from the source, these rows would change the system prompt and the hash
    anthropic_api.enqueue_tool_use(code=COUNT_ROWS, results=DEMO_RESULTS)
    anthropic_api.enqueue_text("# Report\nCounted the rows twice.")
    resumed = analyze(str(config), keep, resume=str(run_dir))
    assert resumed["status"] == "completed"
    transcript = Transcript.load(Path(resumed["run_dir"]) / "transcript.json")
    assert [c.stdout for c in transcript.cells] == [f"{rows}\n", f"{rows}\n"]
    assert transcript.data["sales"]["rows"] == rows
    assert transcript.data["sales"]["read_from_kept"] == str(run_dir / "data" / "sales.parquet")
    assert (Path(resumed["run_dir"]) / "data" / "sales.parquet").read_bytes() == \
        (run_dir / "data" / "sales.parquet").read_bytes()  # kept again: the resumed run can be replayed too

    # A kept file that is not the one the run wrote is refused, as a changed source is. Two rows swapped:
    # the same rows, columns and statistics (so the same system prompt), other data.
    kept = run_dir / "data" / "sales.parquet"
    frame = pl.read_parquet(kept)
    pl.concat([frame[:500], frame[501:502], frame[500:501], frame[502:]]).write_parquet(kept)
    with pytest.raises(ConfigError) as caught:
        analyze(str(config), keep, resume=str(run_dir))
    [problem] = caught.value.problems
    assert problem.key == "datasets.sales" and "the data changed since this run" in problem.message
