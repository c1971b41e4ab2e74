from __future__ import annotations

import logging

import pytest

from tasks.prefect import artifacts
from tasks.prefect.artifacts import artifact_key, publish_report, update_progress


@pytest.mark.parametrize(("name", "parts", "key"), [
    ("monthly-sales", ("report",), "monthly-sales-report"),
    ("Monthly Sales_Review (EU)", ("iteration", 3), "monthly-sales-review-eu-iteration-3"),
    ("Café résumé", ("usage",), "cafe-resume-usage"),
    ("***", ("report",), "analysis-report"),
])
def test_artifact_keys_are_valid(name, parts, key):
    assert artifact_key(name, *parts) == key


def test_a_failing_artifact_call_only_warns(transcript, run_dir, monkeypatch, caplog):
    def refuse(**_):
        raise RuntimeError("API unreachable")

    monkeypatch.setattr(artifacts, "create_markdown_artifact", refuse)
    with caplog.at_level(logging.WARNING):
        assert publish_report(transcript, run_dir) is None
    assert "Could not publish the report artifact: RuntimeError: API unreachable" in caplog.text
    update_progress(None, 50)  # progress never created: nothing to update, nothing raised
