"""Everything a run is rendered into: files in the run folder and Prefect artifacts."""

from __future__ import annotations

from pathlib import Path

from tasks.agent.transcript import Transcript
from tasks.reports.artifacts import (artifact_key, create_progress, publish_iteration, publish_report,
                                     publish_usage, publish_validation, update_progress)
from tasks.reports.html import render_report_html
from tasks.reports.images import MiB
from tasks.reports.markdown import render_iteration_markdown, render_report_markdown
from tasks.reports.notebook import build_notebook, write_notebook

__all__ = [
    "artifact_key", "build_notebook", "create_progress", "publish_iteration", "publish_report", "publish_usage",
    "publish_validation", "render_iteration_markdown", "render_report_html", "render_report_markdown",
    "update_progress", "write_notebook", "write_run_reports",
]

_HTML_BUDGET = 64 * MiB  # a local file, not a request: only keep it from growing without bound


def write_run_reports(transcript: Transcript, run_dir: Path) -> dict[str, Path]:
    """Write report.md (charts linked), report.html (charts embedded) and analysis.ipynb."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": run_dir / "report.md", "html": run_dir / "report.html",
             "notebook": run_dir / "analysis.ipynb"}
    paths["markdown"].write_text(render_report_markdown(transcript, run_dir, embed=False), encoding="utf-8")
    embedded = render_report_markdown(transcript, run_dir, embed=True, budget_bytes=_HTML_BUDGET)
    paths["html"].write_text(render_report_html(embedded, transcript.analysis), encoding="utf-8")
    write_notebook(build_notebook(transcript, run_dir), paths["notebook"])
    return paths
