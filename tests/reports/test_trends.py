"""Trend charts of the numeric results: what is plotted, the PNG, and where the reports show it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from tasks.config.schema import ResultField
from tasks.reports import write_run_reports
from tasks.reports.markdown import render_report_markdown
from tasks.reports.trends import TRENDS_CHART, draw_trends, numeric_series
from tasks.run_history import RunRecord
from tests.reports.test_markdown import decoded_images

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {
    "total_revenue": ResultField(type="number", description="Revenue", unit="$"),
    "sudden_changes": ResultField(type="integer", description="Changes"),
    "best_region": ResultField(type="enum", description="Region", values=["east", "west"]),
    "declared_later": ResultField(type="number", description="Only the newest run has it"),
}


def _run(run: str, day: int, status: str = "completed", **results) -> RunRecord:
    return RunRecord(flow_run_id=run, time=f"2026-11-{day:02d}T07:00:00+00:00", status=status, results=results or None)


HISTORY = [  # newest first, as the history holds it; the values came from the model and the server
    _run("r4", 23, total_revenue=3.1e6, sudden_changes=2, best_region="east", declared_later=1.0),
    _run("r3", 16, "failed"),
    _run("r2", 9, total_revenue="\x1b]0;pwned\x07", sudden_changes=True, best_region="west"),
    _run("r1", 2, total_revenue=2.9e6, sudden_changes=0, best_region="east"),
    _run("r0", 1, total_revenue=float("nan"), sudden_changes=float("inf")),
    RunRecord(flow_run_id="bad-time", time="yesterday", status="completed", results={"total_revenue": 1.0}),
]


def test_only_finite_numbers_of_declared_numeric_results_are_plotted_oldest_first():
    series = {s.name: [(t.day, v) for t, v in s.points] for s in numeric_series(HISTORY, FIELDS)}
    # text, booleans, NaN, infinity and an unreadable time are skipped; one value is not yet a trend
    assert series == {"total_revenue": [(2, 2.9e6), (23, 3.1e6)], "sudden_changes": [(2, 0.0), (23, 2.0)]}


def test_the_chart_is_a_png_in_the_run_folder_and_goes_when_there_is_no_trend(tmp_path):
    path = draw_trends(HISTORY, FIELDS, tmp_path)
    assert path == tmp_path / TRENDS_CHART
    with Image.open(path) as image:
        assert image.format == "PNG" and image.height > image.width / 2  # two panels, one above the other
    assert draw_trends(HISTORY[:1], FIELDS, tmp_path) is None  # a retry with a single run: no stale chart
    assert not path.exists()


def test_the_reports_show_the_trend_chart_after_the_results(transcript, run_dir):
    draw_trends(HISTORY, FIELDS, run_dir)
    transcript.results = {"total_revenue": 3.1e6}
    linked = render_report_markdown(transcript, run_dir, embed=False)
    assert linked.index("## Results") < linked.index("## Trends") < linked.index("Revenue grew 12%")
    assert f"## Trends\n\n![trends]({TRENDS_CHART})" in linked
    embedded = render_report_markdown(transcript, run_dir, embed=True)
    trends = embedded.split("## Trends", 1)[1].split("\n> ", 1)[0]
    [image] = decoded_images(trends)
    assert image.format == "PNG"
    write_run_reports(transcript, run_dir)
    html = (run_dir / "report.html").read_text()
    assert f'src="{TRENDS_CHART}"' not in html and html.count("data:image/png;base64,") == 3  # two charts + trends


def test_a_report_without_a_trend_chart_has_no_section(transcript, run_dir):
    assert "## Trends" not in render_report_markdown(transcript, run_dir, embed=False)


def test_matplotlib_is_not_imported_on_the_way_to_a_run(tmp_path):
    """It takes about a second to import: only drawing a trend chart may load it, at the run's end."""
    code = ("import sys; import tasks.reports, tasks.reports.trends, tasks.run_history, tasks.agent.loop; "
            "print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
