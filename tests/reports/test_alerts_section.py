"""The alerts at the top of the report: the fired ones with the values their condition read (the model's
and the data's text: shown as written, never as markdown or HTML), then the ones not evaluated and why."""

from __future__ import annotations

from markdown_it import MarkdownIt

from tasks.reports import render_report_markdown
from tests.reports.test_hostile_input import fetched_sources
from tests.reports.test_results_section import HOSTILE, with_results


def list_items(markdown: str) -> list[str]:
    """The text of each bullet as a markdown renderer sees it."""
    tokens = MarkdownIt("commonmark", {"html": True}).parse(markdown)
    items, inside = [], False
    for token in tokens:
        if token.type == "list_item_open":
            inside = True
        elif inside and token.type == "inline":
            items.append("".join(c.content for c in token.children or [] if c.type in ("text", "code_inline")))
            inside = False
    return items


def test_fired_alerts_come_first_then_those_not_evaluated(transcript, run_dir):
    with_results(transcript, {"total_revenue": 80.0, "best_region": "east", "drivers": []})
    transcript.alerts = [{"name": "revenue_drop", "message": "Revenue fell more than 10%", "when": "...",
                          "values": {"total_revenue": 80.0, "previous.total_revenue": 100.0}}]
    transcript.alerts_not_evaluated = [{"name": "no_rows", "reason": "no row count for every dataset"}]

    report = render_report_markdown(transcript, run_dir, embed=False)

    status = report.index("**Status:**")
    assert status < report.index("## Alerts") < report.index("## Results") < report.index("> ")
    assert list_items(report)[:2] == [
        "Fired: revenue_drop: Revenue fell more than 10% (total_revenue = 80; previous.total_revenue = 100)",
        "Not evaluated: no_rows: no row count for every dataset",
    ]


def test_a_value_shaped_like_markdown_or_html_is_shown_as_written(transcript, run_dir):
    transcript.alerts = [{"name": "region", "message": "", "when": "best_region != previous.best_region",
                          "values": {"best_region": HOSTILE}}]

    report = render_report_markdown(transcript, run_dir, embed=True)

    assert fetched_sources(report) == []
    assert list_items(report)[0] == f"Fired: region: best_region != previous.best_region (best_region = {HOSTILE})"


def test_no_alerts_no_section(transcript, run_dir):
    assert "## Alerts" not in render_report_markdown(transcript, run_dir, embed=False)
