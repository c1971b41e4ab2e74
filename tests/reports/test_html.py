from __future__ import annotations

import re

from tasks.reports import render_report_html, render_report_markdown


def test_html_is_self_contained(transcript, run_dir):
    page = render_report_html(render_report_markdown(transcript, run_dir, embed=True), transcript.analysis)
    assert page.startswith("<!DOCTYPE html>") and "<title>Monthly Sales Review</title>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched on open
    assert "<link" not in page and "@import" not in page and "<script" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<table>" in page and "max-width: 100%" in page


def test_model_html_is_escaped_and_remote_images_become_links():
    page = render_report_html("<script>alert(1)</script>\n\n![logo](https://example.com/x.png)", "t")
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert '<a href="https://example.com/x.png">logo</a>' in page and "<img" not in page
