from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

from PIL import Image

from tasks.transcript import CellRecord, IterationRecord
from tasks.reports import render_iteration_markdown, render_report_markdown, write_run_reports
from tasks.reports.markdown import REPORT_BUDGET
from tests.reports.run_factory import save_chart, turn

DATA_URI = re.compile(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def decoded_images(markdown: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(b64, validate=True))) for b64 in DATA_URI.findall(markdown)]


def test_report_md_links_charts_that_exist(transcript, run_dir):
    md = render_report_markdown(transcript, run_dir, embed=False)
    assert md.startswith("# Monthly Sales Review\n")
    assert "**Status:** Completed" in md
    assert "Revenue grew 12% over the year." in md and "| Jan | 10 |" in md
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert links == ["charts/iteration-02-chart-1-revenue.png", "charts/iteration-02-chart-2-costs.png"]
    assert all((run_dir / link).is_file() for link in links)
    # the chart the report names is shown where it is named; only the other one is in the section
    charts_section = md.split("## Charts", 1)[1]
    assert ("iteration-02-chart-2-costs.png" in charts_section
            and "iteration-02-chart-1-revenue.png" not in charts_section)
    assert "| sales | 120 | 2 | passed |" in md
    assert "| costs | 10 | 3 | failed: 1 failure (on_invalid: warn) |" in md
    assert "3 iterations, 11,100 tokens" in md and "$0.0300" in md


def test_status_line_names_why_the_run_stopped(transcript, run_dir):
    transcript.status, transcript.stop_detail, transcript.final_report = "max_iterations", "10 of 10 used", None
    md = render_report_markdown(transcript, run_dir, embed=False)
    assert "**Status:** Stopped at the iteration limit: 10 of 10 used" in md
    assert "_No final report" in md


def test_embedded_report_has_decodable_pngs(transcript, run_dir):
    md = render_report_markdown(transcript, run_dir, embed=True)
    images = decoded_images(md)
    assert len(images) == 2 and all(img.format == "PNG" for img in images)
    assert "](charts/" not in md


def test_large_charts_are_downscaled(transcript, run_dir):
    big = save_chart(run_dir, "charts/iteration-02-chart-3-big.png", width_in=12, dpi=300)
    assert Image.open(run_dir / big).width == 3600
    transcript.iterations[1].cells[0].charts.append(big)
    assert max(img.width for img in decoded_images(render_report_markdown(transcript, run_dir, embed=True))) <= 1000


def test_many_large_charts_stay_under_budget(transcript, run_dir):
    # noise does not compress: the worst case for size, unlike real charts
    noise = run_dir / "charts/noise.png"
    Image.frombytes("RGB", (1600, 1200), os.urandom(1600 * 1200 * 3)).save(noise, compress_level=1)
    charts = [f"charts/iteration-03-chart-{n + 1}-noise.png" for n in range(8)]
    for chart in charts:
        shutil.copyfile(noise, run_dir / chart)
    transcript.iterations[2].cells.append(CellRecord("t9", "noise()", charts=charts))
    md = render_report_markdown(transcript, run_dir, embed=True)
    assert len(md.encode()) < REPORT_BUDGET
    assert 2 <= len(decoded_images(md)) < 10
    assert "omitted here to keep this page small" in md


def test_iteration_markdown_shows_code_output_error_and_charts(transcript, run_dir):
    md = render_iteration_markdown(transcript.iterations[0], run_dir)
    assert md.index("Let me look at the data first.") < md.index("```python\nimport pandas")
    assert "0    Jan       10" in md and "**Error:** `KeyError`" in md
    assert "\x1b[" not in md  # kernel tracebacks carry colour codes
    md2 = render_iteration_markdown(transcript.iterations[1], run_dir)
    assert len(decoded_images(md2)) == 2 and "UserWarning" in md2


def test_code_holding_backticks_keeps_its_fence(run_dir):
    code = 'print("""```""")'
    iteration = IterationRecord(2, turn([{"type": "tool_use", "id": "a", "input": {"code": code}}], "tool_use", 10),
                                cells=[CellRecord("a", code)])
    assert "````python\n" + code + "\n````" in render_iteration_markdown(iteration, run_dir)


def test_write_run_reports_writes_three_files(transcript, run_dir):
    paths = write_run_reports(transcript, run_dir)
    assert {p.name for p in paths.values()} == {"report.md", "report.html", "analysis.ipynb"}
    assert all(isinstance(p, Path) and p.stat().st_size > 0 for p in paths.values())
    assert "](charts/iteration-02-chart-1-revenue.png)" in paths["markdown"].read_text()


def test_the_data_section_shows_each_datasets_fingerprint_with_untrusted_names_inert(transcript, run_dir):
    transcript.data = {"sales": {"source": "/data/sales.csv", "rows": 14620, "window": None,
                                 "columns": ["date", "<img src=x onerror=alert(1)>", "a|b", "`tick`"],
                                 "content_hash": "sha256:" + "0123456789abcdef" * 4,
                                 "read_from_kept": "/runs/1/data/sales.parquet"}}
    markdown = render_report_markdown(transcript, run_dir, embed=False)
    section = markdown.split("### Data fingerprint", 1)[1]
    [row] = [line for line in section.splitlines() if line.startswith("| ` sales")]
    assert "| 14,620 |" in row and "sha256:0123456789ab `" in row and "4: ``" in row
    assert "a\\|b" in row and "read from the kept data ` /runs/1/data/sales.parquet `" in row
    assert "Window" not in section  # no run window recorded: no column for one
