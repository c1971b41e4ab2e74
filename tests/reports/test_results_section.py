"""Submitted results in the run folder (results.json) and at the top of the report, where the
values are the model's text: a value shaped like markdown or HTML renders as itself."""

from __future__ import annotations

import json

from markdown_it import MarkdownIt

from tasks.config.schema import AnalysisConfig
from tasks.reports import render_report_markdown, write_run_reports
from tasks.results import results_model, submit_results_tool
from tests.reports.test_hostile_input import fetched_sources

CONFIG = AnalysisConfig.model_validate({
    "name": "sales", "prompt": "p", "datasets": [{"name": "s", "path": "s.csv", "schema": "s.yaml"}],
    "results": {"total_revenue": {"type": "number", "description": "Revenue | all regions", "unit": "EUR"},
                "best_region": {"type": "string", "description": "The region with the most revenue"},
                "drivers": {"type": "list", "description": "Products"}}})
HOSTILE = "east | ![x](http://attacker.example/p.png) <img src=//attacker.example/i.png> **bold**"


def with_results(transcript, values):
    transcript.tools = [*transcript.tools, submit_results_tool(results_model(CONFIG))]
    transcript.results = values
    return transcript


def table(markdown: str) -> list[list[str]]:
    """The results table's body rows as a markdown renderer sees them, each cell as plain text."""
    tokens = MarkdownIt("commonmark", {"html": True}).enable("table").parse(markdown)
    rows, row, in_body = [], None, False
    for token in tokens:
        if token.type == "tbody_open":
            in_body = True
        elif token.type == "tbody_close":
            break
        elif in_body and token.type == "tr_open":
            row = []
        elif in_body and token.type == "tr_close":
            rows.append(row)
        elif in_body and token.type == "inline":
            row.append("".join(c.content for c in token.children or [] if c.type in ("text", "code_inline")))
    return rows


def test_results_open_the_report_and_go_to_results_json(transcript, run_dir):
    values = {"total_revenue": 3391234.5, "best_region": "east", "drivers": ["sandwich", "latte"]}
    paths = write_run_reports(with_results(transcript, values), run_dir)

    assert json.loads((run_dir / "results.json").read_text()) == values == json.loads(paths["results"].read_text())
    report = paths["markdown"].read_text()
    assert report.index("## Results") < report.index("---")  # above the written report
    assert table(report) == [["total_revenue", "3,391,234 EUR", "Revenue | all regions"],
                             ["best_region", "east", "The region with the most revenue"],
                             ["drivers", "sandwich, latte", "Products"]]


def test_a_value_shaped_like_markdown_or_html_is_shown_as_written(transcript, run_dir):
    report = render_report_markdown(with_results(transcript, {"total_revenue": 1.5, "best_region": HOSTILE,
                                                              "drivers": ["a|b", "<b>c</b>"]}), run_dir, embed=True)
    assert fetched_sources(report) == []
    rows = table(report)
    assert rows[1] == ["best_region", HOSTILE, "The region with the most revenue"]
    assert rows[2][1] == "a|b, <b>c</b>"


def test_no_results_no_section_and_no_file(transcript, run_dir):
    write_run_reports(transcript, run_dir)
    assert not (run_dir / "results.json").exists() and "## Results" not in (run_dir / "report.md").read_text()
