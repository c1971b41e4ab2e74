"""A weekly analysis, three runs over data that changes from week to week, with every part real: the flow
against the test Prefect server, the anthropic SDK against the stand-in Messages API, the local sandbox,
a webhook receiver standing in for Slack and an SMTP server (aiosmtpd) for email.

Each week's data is written anew; the stand-in model runs code over it in the sandbox and submits the
week's total as computed here from that file, as a model reading it would. Run 2 is told run 1's values and
its report cites them; the history holds the three runs; the revenue drop of week 3 fires the alert; the
webhook (``on: [alert]``) gets exactly one message and the mailbox (``on: [completed]``) exactly three.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import uuid
from pathlib import Path

import polars as pl
import pytest
from prefect import get_client
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect_email import EmailServerCredentials

from flows.analysis import analyze
from tasks.prefect.history import read_server_records
from tasks.results import results_value
from tasks.transcript import Transcript
from tests.fakes.demo_script import RESULTS
from tests.flows.conftest import SMTP_PASSWORD

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WEEKS = ["2026-11-02T07:00", "2026-11-09T07:00", "2026-11-16T07:00"]  # three Mondays, Paris time
SCALE = [1.0, 1.05, 0.6]  # week 3's revenue falls 43% from week 2's: more than the alert's 10%


def write_week(data: Path, original: pl.DataFrame, scale: float) -> float:
    """The week's sales (the demo's, with revenue scaled) and their total, rounded as a report would give it."""
    week = original.with_columns((pl.col("revenue") * scale).round(2))
    week.write_csv(data)
    return round(float(week["revenue"].sum()), 2)


@pytest.mark.timeout(900)  # three whole runs, each with its sandbox, on a busy 2-core machine
def test_three_weekly_runs_remember_chart_alert_and_notify(prefect_api, anthropic_api, hook, mailbox, monkeypatch,
                                                           tmp_path) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-recurring")
    folder = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", folder, ignore=shutil.ignore_patterns("*.transcript.json", "*.py", "outputs"))
    data = folder / "data" / "retail_sales.csv"
    original = pl.read_csv(data)
    name = f"weekly-{uuid.uuid4().hex[:8]}"  # the session's server holds other tests' runs of the demo
    CustomWebhookNotificationBlock(name="slack", url=hook.url, json_data={"text": "{{subject}}\n{{body}}"}
                                   ).save("recurring-hook", overwrite=True)
    EmailServerCredentials(username="analyst@example.com", password=SMTP_PASSWORD, smtp_server="127.0.0.1",
                           smtp_port=mailbox.port, smtp_type="INSECURE").save("recurring-mail", overwrite=True)
    overrides = {
        "name": name, "model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out"),
        "window": {"length": "7d", "align": "week"},
        "alerts": [{"name": "revenue_drop", "when": "total_revenue < previous.total_revenue * 0.9",
                    "message": "Revenue fell more than 10% since the last run"}],
        "notify": [{"block": "custom-webhook/recurring-hook", "on": ["alert"]},
                   {"block": "email-server-credentials/recurring-mail", "on": ["completed"],
                    "to": ["owner@example.com"]}],
    }

    summaries, totals = [], []
    for as_of, scale in zip(WEEKS, SCALE):
        total = write_week(data, original, scale)
        totals.append(total)
        anthropic_api.enqueue_tool_use(code="import pandas as pd\nprint(pd.read_csv('data/sales.csv')"
                                            "['revenue'].sum())", text="Summing the week's revenue.")
        anthropic_api.enqueue_text(f"# Weekly review\nRevenue was {total:,.2f} this week.")
        anthropic_api.enqueue_results(RESULTS | {"total_revenue": total})
        summaries.append(analyze(str(folder / "retail-sales.yaml"), overrides, as_of=as_of))

    assert [s["status"] for s in summaries] == ["completed"] * 3
    # The code ran over each week's own file in the sandbox.
    for summary, total in zip(summaries, totals):
        [cell] = Transcript.load(Path(summary["run_dir"]) / "transcript.json").cells
        assert float(cell.stdout) == pytest.approx(total)

    # Run 2 was told run 1's total, and its report compares the two, as the flow computed them.
    run2_opening = [r.body for r in anthropic_api.requests][3]["messages"][0]["content"]
    assert f'"total_revenue": {totals[0]}' in run2_opening[1]["text"]
    report2 = (Path(summaries[1]["run_dir"]) / "report.md").read_text()
    since = report2.split("## Since the last run", 1)[1]
    assert f"| ` total_revenue ` | {results_value(totals[0])} | {results_value(totals[1])} |" in since

    # The history: three rows, newest first, each with its week and total; the trend chart in run 3's report.
    history = read_server_records(name)
    assert [(r.status, r.results["total_revenue"]) for r in history] == [("completed", t) for t in reversed(totals)]
    assert [r.window for r in history] == ["2026-11-09..2026-11-15", "2026-11-02..2026-11-08",
                                           "2026-10-26..2026-11-01"]
    report3 = (Path(summaries[2]["run_dir"]) / "report.md").read_text()
    assert "## Trends" in report3 and (Path(summaries[2]["run_dir"]) / "charts" / "trends.png").is_file()

    # The alert fired on run 3 only: first in its report, in its state message, in its summary.
    assert [len(s["alerts"]) for s in summaries] == [0, 0, 1]
    assert summaries[2]["alerts"][0].startswith("revenue_drop: Revenue fell more than 10% since the last run")
    assert report3.index("## Alerts") < report3.index("## Results")
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(summaries[2]["flow_run_id"]).state
    assert state.is_completed() and state.message.startswith("Alert fired: revenue_drop")

    # Exactly the messages the config asked for: the alert to the webhook, each completed run by email.
    [alert] = hook.wait_for(1)
    assert alert["json"]["text"].startswith(f"analysis {name}: completed, 1 alert(s)\n")
    assert "revenue_drop" in alert["json"]["text"]
    assert len(mailbox.messages) == 3
    subjects = [email.message_from_string(m, policy=email.policy.default)["Subject"] for m in mailbox.messages]
    assert subjects == [f"analysis {name}: completed"] * 2 + [f"analysis {name}: completed, 1 alert(s)"]
    assert len(hook.bodies) == 1  # nothing else arrived while the mail was checked
