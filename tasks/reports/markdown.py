"""The run as markdown: the report (report.md, the report artifact) and one iteration's record.

With ``embed=False`` charts are relative links, for a report.md that sits beside ``charts/``; with
``embed=True`` they become data URIs within a byte budget, for Prefect artifacts and report.html.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.agent.transcript import CellRecord, IterationRecord, Transcript
from tasks.reports.images import MiB, ChartEmbedder
from tasks.text_safety import strip_ansi

REPORT_BUDGET = 4 * MiB  # under Prefect Cloud's 5 MiB request cap, with room for the JSON envelope
_NOTE_RESERVE = 300  # bytes kept back per chart for its heading or "omitted" note
STATUS_TEXT = {
    "completed": "Completed",
    "max_iterations": "Stopped at the iteration limit",
    "budget_exceeded": "Stopped: budget exceeded",
    "refused": "Stopped: the model refused",
    "failed": "Failed",
    "running": "Still running (partial report)",
}
_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def fence(text: str, lang: str = "") -> str:
    """A code block whose fence is longer than any backtick run inside (model code may hold ```)."""
    ticks = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def iteration_steps(iteration: IterationRecord) -> Iterator[str | CellRecord]:
    """The turn's text blocks and code cells in the order the model wrote them."""
    cells = {c.tool_use_id: c for c in iteration.cells}
    for block in iteration.turn.content:
        if block.get("type") == "text" and block.get("text", "").strip():
            yield block["text"]
        elif block.get("type") == "tool_use" and block.get("id") in cells:
            yield cells.pop(block["id"])
    yield from cells.values()  # cells whose tool_use block is missing still belong to the record


def dataset_row(report: dict[str, Any]) -> dict[str, Any]:
    """One validation summary, flattened: the same columns in the report and the table artifact."""
    columns = report.get("columns")
    listed = report.get("failures")  # the failing checks, or already just their number
    count = report.get("failure_count", len(listed) if isinstance(listed, list) else listed or 0)
    return {"dataset": report.get("name", "?"), "rows": report.get("rows"),
            "columns": len(columns) if isinstance(columns, (list, tuple, dict)) else columns,
            "valid": bool(report.get("valid", count == 0)), "failures": count,
            "on_invalid": report.get("on_invalid", "")}


def status_line(transcript: Transcript) -> str:
    text = STATUS_TEXT.get(transcript.status, transcript.status)
    return f"{text}: {transcript.stop_detail}" if transcript.stop_detail else text


def usage_line(transcript: Transcript) -> str:
    u, cost = transcript.usage, transcript.cost_usd
    cost_text = f"${cost:.4f}" if cost is not None else "cost unknown (no price for the model)"
    return (f"{len(transcript.iterations)} iterations, {u.total_tokens:,} tokens ({u.input_tokens:,} input, "
            f"{u.output_tokens:,} output, {u.cache_read_input_tokens:,} cache read, "
            f"{u.cache_creation_input_tokens:,} cache write), {cost_text}")


def _omitted(rel_path: str) -> str:
    return f"_Chart `{rel_path}` omitted here to keep this page small; it is in the run folder._"


def _chart_matching(target: str, charts: list[str]) -> str | None:
    """The run's chart that an image link in the model's text means, by file name.

    The model names its files (``revenue.png``); the loop stores them with an iteration prefix
    (``charts/iter-2-1-revenue.png``), so a suffix after a separator also counts.
    """
    name = PurePosixPath(target).name
    for chart in charts:
        stored = PurePosixPath(chart).name
        if stored == name or stored.endswith(("-" + name, "_" + name)):
            return chart
    return None


def _data_section(datasets: list[dict[str, Any]]) -> str:
    lines = ["## Data", "", "| Dataset | Rows | Columns | Validation |", "|---|---:|---:|---|"]
    for row in map(dataset_row, datasets):
        count = row["failures"]
        verdict = "passed" if row["valid"] else f"failed: {count} failure{'' if count == 1 else 's'}"
        if not row["valid"] and row["on_invalid"]:
            verdict += f" (on_invalid: {row['on_invalid']})"
        lines.append(f"| {row['dataset']} | {row['rows'] if row['rows'] is not None else ''} "
                     f"| {row['columns'] if row['columns'] is not None else ''} | {verdict} |")
    return "\n".join(lines)


class _ChartLinks:
    """Charts as placeholders until the text around them is final, so the bytes left for images
    are known exactly; then relative links, or data URIs within the budget."""

    _TOKEN = re.compile("\x00(\\d+)\x00")

    def __init__(self) -> None:
        self.charts: list[tuple[str, str]] = []

    def __call__(self, alt: str, rel_path: str) -> str:
        self.charts.append((alt, rel_path))
        return f"\x00{len(self.charts) - 1}\x00"

    def resolve(self, text: str, run_dir: Path, *, embed: bool, budget_bytes: int) -> str:
        reserve = len(text.encode()) + _NOTE_RESERVE * len(self.charts)
        embedder = ChartEmbedder(run_dir, budget_bytes - reserve) if embed else None

        def link(match: re.Match[str]) -> str:
            alt, rel_path = self.charts[int(match.group(1))]
            if embedder is None:
                return f"![{alt}]({rel_path})"
            uri = embedder.uri(rel_path)
            return f"![{alt}]({uri})" if uri else _omitted(rel_path)

        return self._TOKEN.sub(link, text)


def render_report_markdown(transcript: Transcript, run_dir: Path, *, embed: bool,
                           budget_bytes: int = REPORT_BUDGET) -> str:
    charts = [(i.number, c) for i in transcript.iterations for cell in i.cells for c in cell.charts]
    paths = [c for _, c in charts]
    links = _ChartLinks()
    inline: set[str] = set()

    def inline_chart(match: re.Match[str]) -> str:
        chart = _chart_matching(match.group(2), paths)
        if chart is None:
            return match.group(0)
        inline.add(chart)
        return links(match.group(1), chart)

    body = transcript.final_report or f"_No final report: {status_line(transcript).lower()}._"
    parts = [f"# {transcript.analysis}", "", f"**Status:** {status_line(transcript)}  ",
             f"**Model:** `{transcript.model}` ({transcript.provider}) · **Started:** {transcript.started_at}"
             + (f" · **Finished:** {transcript.finished_at}" if transcript.finished_at else ""), "",
             "\n".join("> " + line for line in transcript.prompt.strip().splitlines()), "", "---", "",
             _IMAGE.sub(inline_chart, body).rstrip(), ""]
    rest = [(n, c) for n, c in charts if c not in inline]
    if rest:
        parts += ["## Charts", ""]
        for number, chart in rest:
            parts += [f"**Iteration {number}: {PurePosixPath(chart).name}**", "",
                      links(PurePosixPath(chart).stem, chart), ""]
    if transcript.datasets:
        parts += [_data_section(transcript.datasets), ""]
    parts += ["## Usage", "", usage_line(transcript)]
    return links.resolve("\n".join(parts) + "\n", Path(run_dir), embed=embed, budget_bytes=budget_bytes)


def render_iteration_markdown(iteration: IterationRecord, run_dir: Path,
                              budget_bytes: int = REPORT_BUDGET) -> str:
    """Everything one iteration did, charts embedded: the body of an iteration artifact."""
    links = _ChartLinks()
    parts = [f"# Iteration {iteration.number}", ""]
    for step in iteration_steps(iteration):
        if isinstance(step, str):
            parts += [step.strip(), ""]
            continue
        parts += [fence(step.code, "python"), ""]
        if step.stdout.strip():
            parts += ["**Output**", "", fence(strip_ansi(step.stdout), "text"), ""]
        if step.stderr.strip():
            parts += ["**Standard error**", "", fence(strip_ansi(step.stderr), "text"), ""]
        if step.error:
            parts += [f"**Error:** `{step.error.get('name', 'Error')}`: {step.error.get('message', '')}", "",
                      fence(strip_ansi(step.error.get("traceback", "")), "text"), ""]
        if step.timed_out:
            parts += ["**Timed out.**" + (" The session was restarted: its variables are gone."
                                          if step.state_reset else ""), ""]
        parts += [item for chart in step.charts for item in (links(PurePosixPath(chart).stem, chart), "")]
    u = iteration.turn.usage
    cost = f", ${iteration.turn.cost_usd:.4f}" if iteration.turn.cost_usd is not None else ""
    parts.append(f"_Stop reason `{iteration.turn.stop_reason}`; {u.total_tokens:,} tokens{cost}._")
    return links.resolve("\n".join(parts) + "\n", Path(run_dir), embed=True, budget_bytes=budget_bytes)
