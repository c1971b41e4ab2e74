"""Everything a run is rendered into: the files in its run folder.

Its Prefect artifacts are in tasks/prefect/artifacts.py."""

from __future__ import annotations

import json
from pathlib import Path

from tasks.transcript import Transcript
from tasks.reports.html import render_report_html
from tasks.reports.images import MiB, ChartEmbedder
from tasks.reports.markdown import render_iteration_markdown, render_report_markdown
from tasks.reports.notebook import build_notebook, write_notebook
from tasks.reports.trends import trend_charts
from tasks.results import RESULTS_FILE

__all__ = [
    "build_notebook", "render_iteration_markdown", "render_report_html", "render_report_markdown",
    "write_notebook", "write_run_reports", "ReportsNotWritten",
]

_HTML_BUDGET = 64 * MiB  # a local file, not a request: only keep it from growing without bound


class ReportsNotWritten(Exception):
    """Some report files could not be written; ``str()`` names each file and its cause."""

    def __init__(self, failures: dict[Path, BaseException]) -> None:
        self.failures = failures
        super().__init__("; ".join(f"{path.name} not written ({type(exc).__name__}: {exc})"
                                   for path, exc in failures.items()))


def write_run_reports(transcript: Transcript, run_dir: Path) -> dict[str, Path]:
    """Write report.md (charts linked), report.html (charts embedded), analysis.ipynb, and results.json
    when Claude submitted results.

    Each file is written even if another fails; then ``ReportsNotWritten`` names those that failed.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": run_dir / "report.md", "html": run_dir / "report.html",
             "notebook": run_dir / "analysis.ipynb"}
    linked = render_report_markdown(transcript, run_dir, embed=False)
    charts = [c for cell in transcript.cells for c in cell.charts] + trend_charts(run_dir)
    embedder = ChartEmbedder(run_dir, _HTML_BUDGET - len(linked.encode()))
    writers = {
        "markdown": lambda: paths["markdown"].write_text(linked, encoding="utf-8"),
        "html": lambda: paths["html"].write_text(
            render_report_html(linked, transcript.analysis, charts, embedder.uri), encoding="utf-8"),
        "notebook": lambda: write_notebook(build_notebook(transcript, run_dir), paths["notebook"]),
    }
    if transcript.results is not None:
        paths["results"] = run_dir / RESULTS_FILE
        writers["results"] = lambda: paths["results"].write_text(
            json.dumps(transcript.results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    failures: dict[Path, BaseException] = {}
    for kind, write in writers.items():
        try:
            write()
        except Exception as exc:  # noqa: BLE001 - the other files are still worth having
            if paths[kind].is_file():  # a half-written file would pass for a report
                paths[kind].unlink()
            failures[paths[kind]] = exc
    if failures:
        raise ReportsNotWritten(failures)
    return paths
