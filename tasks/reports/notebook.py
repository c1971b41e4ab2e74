"""analysis.ipynb: the run as a Jupyter notebook, so an analyst can open, read and re-run it.

The model's text becomes markdown cells and each code execution a code cell carrying the outputs
the sandbox returned, in the order the model wrote them.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tasks.transcript import CellRecord, Transcript
from tasks.image_safety import keep_image
from tasks.reports.safe_markdown import render_segments, safe_markdown
from tasks.reports.markdown import iteration_steps, status_line


def _outputs(cell: CellRecord, run_dir: Path) -> list[NotebookNode]:
    outputs = []
    if cell.stdout:
        outputs.append(new_output("stream", name="stdout", text=cell.stdout))
    if cell.stderr:
        outputs.append(new_output("stream", name="stderr", text=cell.stderr))
    if cell.timed_out:
        note = "[timed out" + ("; the session was restarted and its variables are gone" if cell.state_reset else "")
        outputs.append(new_output("stream", name="stderr", text=note + "]\n"))
    for chart in cell.charts:
        path = run_dir / chart
        if not path.is_file():  # a chart lost from disk leaves the notebook valid, just without it
            continue
        kept = keep_image(path.read_bytes())  # the loop capped it; a file changed since may not be
        if kept.png is None:
            outputs.append(new_output("stream", name="stderr", text=f"[{chart}: {kept.note}]\n"))
            continue
        outputs.append(new_output("display_data", data={"image/png": base64.b64encode(kept.png).decode("ascii")},
                                  metadata={}))
    if cell.error:  # last, as Jupyter shows it: the error ends the cell
        outputs.append(new_output("error", ename=cell.error.get("name", "Error"),
                                  evalue=cell.error.get("message", ""),
                                  traceback=(cell.error.get("traceback") or "").splitlines()))
    return outputs


def _markdown(text: str) -> str:
    """The model's text for a markdown cell: Jupyter renders raw HTML and remote images in those."""
    return render_segments(safe_markdown(text.strip()))


def _header(transcript: Transcript) -> str:
    prompt = "\n".join("> " + line for line in transcript.prompt.strip().splitlines())
    return (f"# {transcript.analysis}\n\n{prompt}\n\n"
            f"- **Model:** `{transcript.model}` ({transcript.provider})\n"
            f"- **Date:** {transcript.started_at}\n- **Status:** {status_line(transcript)}\n\n"
            "The code reads the datasets from `data/`: copy them there, beside this notebook, to re-run it.")


def build_notebook(transcript: Transcript, run_dir: Path) -> NotebookNode:
    run_dir = Path(run_dir)
    nb = new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    nb.cells.append(new_markdown_cell(_header(transcript)))
    count, last_text = 0, None
    for iteration in transcript.iterations:
        nb.cells.append(new_markdown_cell(f"## Iteration {iteration.number}"))
        for step in iteration_steps(iteration):
            if isinstance(step, str):
                nb.cells.append(new_markdown_cell(_markdown(step)))
                last_text = step.strip()
                continue
            count += 1
            nb.cells.append(new_code_cell(step.code, execution_count=count, outputs=_outputs(step, run_dir)))
    # The final report is usually the last turn's text, already above; do not print it twice.
    report = (transcript.final_report or "").strip()
    if report and report != last_text:
        nb.cells.append(new_markdown_cell("## Report\n\n" + _markdown(report)))
    return nb


def write_notebook(nb: NotebookNode, path: Path) -> Path:
    """Validate, then write: an invalid notebook should fail here, not when someone opens it."""
    nbformat.validate(nb)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
