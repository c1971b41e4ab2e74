"""A run whose report files cannot all be written is not reported as completed."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.analysis import _collect, summarize
from tasks.transcript import TRANSCRIPT_FILE, Transcript
from tests.reports.run_factory import build_transcript


@flow(name="collect-only")
def collect_only(run_dir: Path) -> dict:
    transcript = build_transcript(run_dir)
    _collect(transcript, run_dir)
    return summarize(transcript, run_dir)


def test_a_report_that_cannot_be_written_fails_the_run_naming_the_file(prefect_api, tmp_path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "report.html").mkdir(parents=True)  # writing the page there fails

    summary = collect_only(run_dir)

    assert summary["status"] == "failed"  # analyst run exits 1 for it (cli/run.py: COMPLETE)
    assert summary["detail"].startswith("report.html not written (IsADirectoryError: "), summary["detail"]
    assert Transcript.load(run_dir / TRANSCRIPT_FILE).status == "failed"
    assert (run_dir / "report.md").is_file() and (run_dir / "analysis.ipynb").is_file()
