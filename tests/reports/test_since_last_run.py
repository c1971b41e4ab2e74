"""The report's "Since the last run": this run's results against the last completed run's, computed
by the flow; a first run says there is nothing to compare with; memory off, no section."""

from __future__ import annotations

from tasks.reports import render_report_markdown, write_run_reports
from tasks.run_history import RunRecord
from tests.reports.test_hostile_input import fetched_sources
from tests.reports.test_results_section import HOSTILE, table, with_results

LAST_RUN = RunRecord("w1", "2026-11-02T06:00:00+00:00", "completed", window="2026-10-26..2026-11-01",
                     results={"total_revenue": 3385047, "best_region": "west", "drivers": ["latte"]},
                     summary="Revenue rose.").to_dict()


def _section(markdown: str) -> str:
    """From its heading to the next heading or the quoted prompt."""
    start = markdown.index("## Since the last run")
    ends = [i for i in (markdown.find(mark, start) for mark in ("\n## ", "\n> ")) if i > 0]
    return markdown[start:min(ends, default=len(markdown))]


def test_the_section_compares_each_result_with_the_last_run(transcript, run_dir):
    transcript = with_results(transcript, {"total_revenue": 3400000.0, "best_region": "east", "drivers": ["latte"]})
    transcript.memory = [LAST_RUN, RunRecord("w0", "2026-10-26T06:00:00+00:00", "completed").to_dict()]
    report = write_run_reports(transcript, run_dir)["markdown"].read_text()

    assert report.index("## Results") < report.index("## Since the last run") < report.index("\n---\n")
    section = _section(report)
    assert "Compared with the run for 2026-11-02T06:00:00+00:00 (window 2026-10-26..2026-11-01)." in section
    assert table(section) == [["total_revenue", "3,385,047", "3,400,000", "+14,953 (+0.44%)"],
                              ["best_region", "west", "east", "changed"],
                              ["drivers", "latte", "latte", "unchanged"]]
    html = (run_dir / "report.html").read_text()
    assert "Since the last run" in html and "+14,953 (+0.44%)" in html


def test_a_first_run_says_there_is_no_earlier_run_and_memory_off_shows_nothing(transcript, run_dir):
    transcript.memory = []
    assert "No earlier completed run to compare with" in _section(
        render_report_markdown(transcript, run_dir, embed=False))
    transcript.memory = None
    assert "Since the last run" not in render_report_markdown(transcript, run_dir, embed=False)


def test_values_and_times_from_the_history_render_as_text(transcript, run_dir):
    hostile = dict(LAST_RUN, time="2026-11-02 <img src=//attacker.example/t.png>", window="](http://x.example)",
                   results={"best_region": HOSTILE, "`odd name` | <b>": 1})
    transcript = with_results(transcript, {"best_region": "east"})
    transcript.memory = [hostile]
    section = _section(render_report_markdown(transcript, run_dir, embed=False))
    assert fetched_sources(section) == []
    assert "Compared with the run for 2026-11-02 img srcattacker.examplet.png (window http:x.example)." in section
    rows = table(section)
    assert rows[0] == ["best_region", HOSTILE, "east", "changed"]
    assert rows[1][0].strip() == "`odd name` | <b>" and rows[1][3] == "no value this run"
