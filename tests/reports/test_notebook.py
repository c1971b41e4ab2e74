from __future__ import annotations

import base64

import nbformat

from tasks.reports import build_notebook, write_notebook


def test_notebook_validates_and_keeps_cells_in_order(transcript, run_dir):
    nb = build_notebook(transcript, run_dir)
    nbformat.validate(nb)
    header = nb.cells[0]
    assert header.cell_type == "markdown" and header.source.startswith("# Monthly Sales Review")
    assert "How did revenue change?" in header.source and "claude-sonnet-5-5" in header.source
    assert transcript.started_at in header.source

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code] == [cell.code for cell in transcript.cells]
    assert [c.execution_count for c in code] == [1, 2, 3]
    first, failing, plotting = (c.outputs for c in code)
    assert first[0].output_type == "stream" and first[0].name == "stdout" and "Jan" in first[0].text
    assert failing[-1].output_type == "error" and failing[-1].ename == "KeyError"
    assert isinstance(failing[-1].traceback, list)
    assert [o.name for o in plotting if o.output_type == "stream"] == ["stdout", "stderr"]
    images = [o for o in plotting if o.output_type == "display_data"]
    assert len(images) == 2 and base64.b64decode(images[0].data["image/png"]).startswith(b"\x89PNG")

    # the model's text sits before the code it explains; the final report appears once
    sources = [c.source for c in nb.cells]
    assert sources.index("Let me look at the data first.") < sources.index(code[0].source)
    assert sum("Revenue grew 12%" in s for s in sources) == 1


def test_write_notebook_round_trips(transcript, run_dir):
    path = write_notebook(build_notebook(transcript, run_dir), run_dir / "analysis.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert len([c for c in nb.cells if c.cell_type == "code"]) == 3
