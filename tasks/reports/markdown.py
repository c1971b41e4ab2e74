"""The run as markdown: the report (report.md, the report artifact) and one iteration's record.

With ``embed=False`` charts are relative links, for a report.md that sits beside ``charts/``; with
``embed=True`` they become data URIs within a byte budget, for Prefect artifacts and report.html.
"""

from __future__ import annotations

import re

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.transcript import CellRecord, IterationRecord, Transcript
from tasks.image_safety import name_stem
from tasks.memory import result_changes
from tasks.reports.images import MiB, ChartEmbedder
from tasks.reports.safe_markdown import ChartRef, Segment, fence, safe_inline, safe_markdown
from tasks.reports.trends import trend_charts
from tasks.results import results_rows, results_value
from tasks.text_safety import printable

REPORT_BUDGET = 4 * MiB  # under Prefect Cloud's 5 MiB request cap, with room for the JSON envelope
# What could make text in a table cell more than text: links and images ([ ]), emphasis, code, raw
# HTML and entities, the cell's end (|), and the escape itself.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]<>|&~])")
_NOTE_RESERVE = 300  # bytes kept back per chart for its heading or "omitted" note
STATUS_TEXT = {
    "completed": "Completed",
    "max_iterations": "Stopped at the iteration limit",
    "budget_exceeded": "Stopped: budget exceeded",
    "refused": "Stopped: the model refused",
    "results_invalid": "Stopped: no valid results",
    "failed": "Failed",
    "running": "Still running (partial report)",
}

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
    return f"{text}: {safe_inline(transcript.stop_detail)}" if transcript.stop_detail else text


def run_time_line(transcript: Transcript) -> str:
    """``**Window:** 2026-11-23 to 2026-11-29 (as of 2026-11-30T07:00:00+00:00)``; a transcript of ours
    wrote ``run_time``, so its values are ISO dates, yet it is read back from disk: only plain text here."""
    run_time = transcript.run_time or {}
    as_of = _plain(run_time.get("as_of"))
    window = run_time.get("window") if isinstance(run_time.get("window"), dict) else None
    if window:
        first, last = _plain(str(window.get("start", ""))[:10]), _plain(window.get("last_day"))
        return f"**Window:** {first} to {last} (as of {as_of})"
    return f"**As of:** {as_of}" if as_of else ""


def _plain(value: Any) -> str:
    return re.sub(r"[^0-9A-Za-z:+.\- ]", "", str(value or ""))[:40]


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

    The model names its files (``outputs/revenue.png``); the loop stores them under a name ending in
    the same stem (``charts/iteration-02-chart-1-revenue.png``, see ``tasks.image_safety``), and a
    JPEG the sandbox converted keeps its stem too.
    """
    if target.lower().startswith("data:") or "://" in target or target.startswith("//"):
        return None
    stem = name_stem(target)
    for chart in charts:
        stored = PurePosixPath(chart).stem
        if stored == stem or stored.endswith(("-" + stem, "_" + stem)):
            return chart
    return None


def _results_section(transcript: Transcript) -> str:
    """The submitted values as a table; the values are the model's text, so every cell is escaped."""
    lines = ["## Results", "", "| Result | Value | Description |", "|---|---:|---|"]
    for row in results_rows(transcript.tools, transcript.results or {}):
        value = results_value(row["value"]) + (f" {row['unit']}" if row["unit"] else "")
        lines.append(f"| `{row['name']}` | {_cell(value)} | {_cell(row['description'])} |")  # a snake_case name
    return "\n".join(lines)


def _since_last_run_section(memory: list[dict[str, Any]], results: dict[str, Any] | None) -> str:
    """This run's results against the last completed run's, as the flow computed them (``tasks/memory.py``);
    the values came from the model and the history, so every cell is escaped."""
    lines = ["## Since the last run", ""]
    if not memory:
        lines.append("No earlier completed run to compare with: this is the first run of this analysis, or every "
                     "run before it failed.")
        return "\n".join(lines)
    last = memory[0]
    window = f" (window {_plain(last.get('window'))})" if last.get("window") else ""
    lines.append(f"Compared with the run for {_plain(last.get('time'))}{window}.")
    changes = result_changes(results, last.get("results") if isinstance(last.get("results"), dict) else None)
    if changes:
        lines += ["", "| Result | Last run | This run | Change |", "|---|---:|---:|---|"]
        for row in changes:
            old, new = ("" if v is None else _cell(results_value(v)) for v in (row.previous, row.current))
            lines.append(f"| {_code(row.name)} | {old} | {new} | {_cell(row.change)} |")
    return "\n".join(lines)


def _trends_section(run_dir: Path) -> list[str | ChartRef]:
    """The trend chart the run drew of its numeric results and the runs before it (tasks/reports/trends.py),
    its alt text its file's stem like every chart's."""
    return [line for chart in trend_charts(run_dir)
            for line in ("## Trends", "", ChartRef(PurePosixPath(chart).stem, chart), "")]


def _alerts_section(transcript: Transcript) -> str:
    """The alerts that fired, with the values their condition read (the model's and the data's: escaped),
    then those that could not be evaluated and why. A transcript read back may come from anywhere, so
    the names and messages are escaped too."""
    lines = ["## Alerts", ""]
    for alert in transcript.alerts:
        values = alert.get("values")
        read = "" if not isinstance(values, dict) else "; ".join(
            f"{_cell(str(k))} = {_cell(results_value(v))}" for k, v in values.items())
        lines.append(f"- **Fired: {_cell(str(alert.get('name')))}**: "
                     f"{_cell(str(alert.get('message') or alert.get('when') or ''))}" + (f" ({read})" if read else ""))
    for skipped in transcript.alerts_not_evaluated:
        lines.append(f"- Not evaluated: {_cell(str(skipped.get('name')))}: {_cell(str(skipped.get('reason')))}")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """One line of text inside a table cell: every markdown and HTML character taken literally."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", " ".join(printable(text).split()))


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


_SHOWN_COLUMNS = 8
_HASH_CHARS = 12  # of the hex digest: enough to tell two runs' data apart at a glance


def _code(text: object) -> str:
    """Untrusted text (a column name, a query) as an inline code span inside a table cell."""
    inner = " ".join(printable(text).split()).replace("|", "\\|")
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", inner)), default=0) + 1)
    return f"{ticks} {inner} {ticks}" if inner else ""


def _fingerprint_section(records: dict[str, dict[str, Any]]) -> str:
    """What each dataset was: its source (and query), rows, columns, content hash and window."""
    windowed = any(r.get("window") for r in records.values())
    lines = ["### Data fingerprint", "", "| Dataset | Source | Rows | Columns | Content hash |"
             + (" Window |" if windowed else ""), "|---|---|---:|---|---|" + ("---|" if windowed else "")]
    for name, record in records.items():
        source = _code(record.get("source", ""))
        if record.get("query"):
            source += f" {_code(record['query'])}"
        if record.get("read_from_kept"):
            source += f" (read from the kept data {_code(record['read_from_kept'])}, not the source)"
        columns = [str(c) for c in record.get("columns") or []]
        shown = ", ".join(columns[:_SHOWN_COLUMNS]) + (", …" if len(columns) > _SHOWN_COLUMNS else "")
        digest = str(record.get("content_hash", ""))
        rows = record.get("rows")
        lines.append(f"| {_code(name)} | {source} | {f'{rows:,}' if isinstance(rows, int) else ''} "
                     f"| {len(columns)}: {_code(shown)} | {_code(digest[:len('sha256:') + _HASH_CHARS])} |"
                     + (f" {_code(record.get('window') or '')} |" if windowed else ""))
    return "\n".join(lines)


class _Document:
    """Markdown text with the charts held apart until the text around them is final, so the bytes
    left for images are known exactly; then relative links, or data URIs within the budget."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []

    def add(self, *lines: str | ChartRef | list[Segment]) -> None:
        for line in lines:
            self.segments.extend(line if isinstance(line, list) else [line])
            self.segments.append("\n")

    def render(self, run_dir: Path, *, embed: bool, budget_bytes: int) -> str:
        charts = [s for s in self.segments if isinstance(s, ChartRef)]
        text_bytes = sum(len(s.encode()) for s in self.segments if isinstance(s, str))
        embedder = ChartEmbedder(run_dir, budget_bytes - text_bytes - _NOTE_RESERVE * len(charts)) if embed else None
        out = []
        for segment in self.segments:
            if isinstance(segment, str):
                out.append(segment)
            elif embedder is None:
                out.append(f"![{segment.alt}]({segment.rel_path})")
            else:
                uri = embedder.uri(segment.rel_path)
                out.append(f"![{segment.alt}]({uri})" if uri else _omitted(segment.rel_path))
        return "".join(out)


def render_report_markdown(transcript: Transcript, run_dir: Path, *, embed: bool,
                           budget_bytes: int = REPORT_BUDGET) -> str:
    charts = [(i.number, c) for i in transcript.iterations for cell in i.cells for c in cell.charts]
    paths = [c for _, c in charts]
    if transcript.final_report:
        body = safe_markdown(transcript.final_report.rstrip(), lambda src: _chart_matching(src, paths))
    else:
        body = [f"_No final report: {status_line(transcript).lower()}._"]
    inline = {s.rel_path for s in body if isinstance(s, ChartRef)}
    doc = _Document()
    doc.add(f"# {transcript.analysis}", "", f"**Status:** {status_line(transcript)}  ",
            f"**Model:** `{transcript.model}` ({transcript.provider}) · **Started:** {transcript.started_at}"
            + (f" · **Finished:** {transcript.finished_at}" if transcript.finished_at else "") + "  ",
            run_time_line(transcript), "",
            *([_alerts_section(transcript), ""] if transcript.alerts or transcript.alerts_not_evaluated else []),
            *([_results_section(transcript), ""] if transcript.results else []),
            *([_since_last_run_section(transcript.memory, transcript.results), ""]
              if transcript.memory is not None else []),
            *_trends_section(Path(run_dir)),
            "\n".join("> " + line for line in transcript.prompt.strip().splitlines()), "", "---", "", body, "")
    rest = [(n, c) for n, c in charts if c not in inline]
    if rest:
        doc.add("## Charts", "")
        for number, chart in rest:
            doc.add(f"**Iteration {number}: {PurePosixPath(chart).name}**", "",
                    ChartRef(PurePosixPath(chart).stem, chart), "")
    notes = [(i.number, note) for i in transcript.iterations for cell in i.cells for note in cell.warnings]
    if notes:
        doc.add("## Sandbox notes", "", fence("\n".join(f"iteration {n}: {printable(note)}" for n, note in notes),
                                                "text"), "")
    if transcript.datasets:
        doc.add(_data_section(transcript.datasets), "")
    if transcript.data:
        doc.add(_fingerprint_section(transcript.data), "")
    doc.add("## Usage", "")
    doc.segments.append(usage_line(transcript) + "\n")
    return doc.render(Path(run_dir), embed=embed, budget_bytes=budget_bytes)


def render_iteration_markdown(iteration: IterationRecord, run_dir: Path,
                              budget_bytes: int = REPORT_BUDGET) -> str:
    """Everything one iteration did, charts embedded: the body of an iteration artifact."""
    doc = _Document()
    doc.add(f"# Iteration {iteration.number}", "")
    for step in iteration_steps(iteration):
        if isinstance(step, str):
            doc.add(safe_markdown(step.strip()), "")
            continue
        doc.add(fence(step.code, "python"), "")
        if step.stdout.strip():
            doc.add("**Output**", "", fence(printable(step.stdout), "text"), "")
        if step.stderr.strip():
            doc.add("**Standard error**", "", fence(printable(step.stderr), "text"), "")
        if step.error:
            doc.add(f"**Error:** `{safe_inline(step.error.get('name', 'Error')).replace('`', '')}`: "
                    f"{safe_inline(step.error.get('message', ''))}", "",
                    fence(printable(step.error.get("traceback", "")), "text"), "")
        if step.timed_out:
            doc.add("**Timed out.**" + (" The session was restarted: its variables are gone."
                                        if step.state_reset else ""), "")
        if step.warnings:
            doc.add("**Sandbox notes**", "", fence("\n".join(map(printable, step.warnings)), "text"), "")
        for chart in step.charts:
            doc.add(ChartRef(PurePosixPath(chart).stem, chart), "")
    u = iteration.turn.usage
    cost = f", ${iteration.turn.cost_usd:.4f}" if iteration.turn.cost_usd is not None else ""
    doc.segments.append(f"_Stop reason `{iteration.turn.stop_reason}`; {u.total_tokens:,} tokens{cost}._\n")
    return doc.render(Path(run_dir), embed=True, budget_bytes=budget_bytes)
