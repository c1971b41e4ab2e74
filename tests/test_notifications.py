"""The notification's text, without Prefect: what it says, and what it never carries."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tasks.config.upkeep_schema import NotifyConfig
from tasks.notifications import RunNotice, environment_secrets, notice_body, notice_subject


def test_the_body_names_the_run_its_results_alerts_cost_and_links() -> None:
    notice = RunNotice(analysis="weekly-sales", outcome="completed", status="max_iterations", window="2026-11-23/P7D",
                       results={"revenue": 1234.5, "top region": "East"}, alerts=["revenue fell 30%"],
                       cost_usd=0.0123, flow_run_url="http://ui/runs/flow-run/1", report_url="http://ui/artifacts/key/r")

    body = notice_body(notice)

    assert body.splitlines() == [
        "Analysis: weekly-sales", "Status: completed (max iterations)", "Window: 2026-11-23/P7D",
        "Key results:", "- revenue: 1234.5", "- top region: East", "Alerts fired:", "- revenue fell 30%",
        "Cost: $0.0123", "Flow run: http://ui/runs/flow-run/1", "Report: http://ui/artifacts/key/r"]
    assert notice_subject(notice) == "analysis weekly-sales: completed, 1 alert(s)"


def test_without_results_or_alerts_those_lines_are_left_out() -> None:
    body = notice_body(RunNotice(analysis="a", outcome="validation_failed", detail="DataInvalid: sales"))
    assert body == "Analysis: a\nStatus: validation failed\nDetail: DataInvalid: sales"


def test_a_secret_from_the_environment_or_named_by_the_caller_is_replaced(monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-planted-0123456789")
    notice = RunNotice(analysis="a", outcome="failed", detail="401 for key sk-ant-planted-0123456789",
                       results={"token": "hook-secret-abcdef"})

    body = notice_body(notice, secrets=["hook-secret-abcdef"])

    assert "planted" not in body and "hook-secret" not in body
    assert "Detail: 401 for key [secret]" in body and "- token: [secret]" in body
    assert "sk-ant-planted-0123456789" in environment_secrets()


def test_untrusted_text_is_one_clean_clipped_line() -> None:
    hostile = "\x1b[2J\u202eevil\nStatus: completed\r" + "x" * 2000
    body = notice_body(RunNotice(analysis="a", outcome="failed", detail=hostile, alerts=[hostile]))

    assert "\x1b" not in body and "\u202e" not in body and "\r" not in body
    assert [line for line in body.splitlines() if line.startswith("Status:")] == ["Status: failed"]
    assert all(len(line) <= 520 for line in body.splitlines())


def test_notify_entries_are_checked_when_the_config_loads() -> None:
    assert NotifyConfig(block="slack-webhook/analyses").on == ["failed", "crashed", "validation_failed"]
    assert NotifyConfig(block="email-server-credentials/smtp", to=["x@example.com"]).on == ["failed",
                                                                                          "validation_failed"]
    for entry, says in [({"block": "slack"}, "'block-type/block-name'"),
                        ({"block": "email-server-credentials/smtp", "on": ["failed"]}, "needs 'to'"),
                        ({"block": "slack-webhook/a", "to": ["x@example.com"]}, "'to' is for an email"),
                        ({"block": "email-server-credentials/smtp", "to": ["x@example.com"], "on": ["crashed"]},
                         "cannot be emailed"),
                        ({"block": "slack-webhook/a", "on": ["finished"]}, "completed"),
                        ({"block": "slack-webhook/a", "on": []}, "at least 1")]:
        with pytest.raises(ValidationError, match=says):
            NotifyConfig.model_validate(entry)
