"""Fault matrix, hostile output: a real ``analyst run`` (local sandbox, the stand-in model) whose
code and final answer carry what a steered model could write: text shaped like the renderer's own
markers, NUL and escape characters, remote images and raw HTML, and images that are small files
but huge once decoded. The run completes, with all three report files, and nothing in them or in
its artifacts would make a browser fetch anything."""

from __future__ import annotations

import re
import shutil

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

from tasks.image_safety import MAX_BYTES
from tests.fakes.png_bombs import BLANK_PNG_SOURCE
from tests.reports.test_hostile_input import FETCHING, FORGED, fetched_sources

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]

CELL = BLANK_PNG_SOURCE + f"""
import io, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image as Shown, display
from PIL import Image

open("outputs/bomb.png", "wb").write(blank_png(20000, 20000))
open("outputs/large.png", "wb").write(blank_png(13000, 13000))
plt.plot([10, 12, 11, 14])
plt.savefig("outputs/revenue.png")
plt.close()
noise = io.BytesIO()
Image.frombytes("RGB", (1500, 1500), os.urandom(1500 * 1500 * 3)).save(noise, format="PNG", compress_level=1)
display(Shown(data=noise.getvalue()))
print({FORGED!r})
"""


def artifact_markdown(flow_run_id: str, key: str) -> str:
    with get_client(sync_client=True) as client:
        [found] = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return str(found.data)


def test_hostile_text_and_images_leave_a_complete_report_that_fetches_nothing(run, anthropic_api) -> None:
    anthropic_api.enqueue_tool_use(code=CELL, text=FETCHING)
    anthropic_api.enqueue_text(FORGED + "\n\n" + FETCHING + "\n![Revenue](outputs/revenue.png)\n")

    outcome = run()

    assert outcome.exit_code == 0 and outcome.summary["status"] == "completed", outcome.output
    run_dir = outcome.run_dir
    [cell] = outcome.transcript.cells
    assert "ANALYSTCHART0X" in cell.stdout
    # the two images over the pixel cap are refused, and the model and the report are told
    assert any(w.startswith("outputs/bomb.png: not kept: 20000x20000 pixels") for w in cell.warnings), cell.warnings
    assert any(w.startswith("outputs/large.png: not kept: 13000x13000 pixels") for w in cell.warnings)
    [figure, revenue] = sorted(cell.charts, key=lambda c: "revenue" in c)
    assert re.fullmatch(r"charts/iteration-01-chart-\d-revenue\.png", revenue), cell.charts
    assert (run_dir / figure).stat().st_size <= MAX_BYTES  # the 6.75 MB display_data, shrunk
    assert any("shrunk from" in w for w in cell.warnings)

    report = (run_dir / "report.md").read_text()
    body = report.split("## Charts")[0]
    assert f"![Revenue]({revenue})" in body  # the model's link to its own file resolves to the stored chart
    assert "ANALYSTCHART9X" in report and "20000x20000 pixels" in report
    page = (run_dir / "report.html").read_text()
    assert all(src.startswith("data:image/png;base64,") for src in re.findall(r'<img src="([^"]*)"', page))
    assert "<img src=\"http" not in page and "attacker.example/z.png" in page
    notebook = (run_dir / "analysis.ipynb").read_text()
    assert notebook.count('"image/png"') == 2 and len(notebook) < 3 * MAX_BYTES

    run_id = outcome.summary["flow_run_id"]
    for key in ("faults-report", "faults-iteration-1"):
        markdown = artifact_markdown(run_id, key)
        assert "attacker.example" in markdown and fetched_sources(markdown) == [], key
        assert "ANALYSTCHART9X" in markdown and "\x00" not in markdown
