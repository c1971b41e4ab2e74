"""Notifications from real runs of the ``analyze`` flow: a webhook receiver on loopback stands in for Slack and
Teams (a custom-webhook block), aiosmtpd receives the email (an email-server-credentials block). No message
carries a secret: the API key, the webhook's token and the SMTP password are planted and searched for."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect_email import EmailServerCredentials

from flows.analysis import analyze
from tasks.errors import ModelError
from tasks.prefect.validate import DataInvalid
from tests.fakes.demo_script import RESULTS as DEMO_RESULTS
from tests.flows.conftest import SMTP_PASSWORD, demo_with_an_invalid_row

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "configs" / "retail-sales.yaml"
API_KEY = "sk-ant-planted-notify-0123456789"
HOOK_TOKEN = "hook-token-planted-abcdef"
SECRETS = (API_KEY, HOOK_TOKEN, SMTP_PASSWORD)


@pytest.fixture
def env(prefect_api, anthropic_api, hook, mailbox, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    CustomWebhookNotificationBlock(
        name="analyses", url=hook.url, json_data={"text": "{{subject}}\n{{body}}"},
        headers={"Authorization": "Bearer {{token}}"}, secrets={"token": HOOK_TOKEN},
    ).save("team-hook", overwrite=True)
    EmailServerCredentials(username="analyst@example.com", password=SMTP_PASSWORD, smtp_server="127.0.0.1",
                           smtp_port=mailbox.port, smtp_type="INSECURE").save("team-mail", overwrite=True)
    return {"model.base_url": anthropic_api.base_url, "outputs.dir": str(tmp_path / "out"),
            "notify": [{"block": "custom-webhook/team-hook", "on": ["completed", "failed", "validation_failed"]},
                       {"block": "email-server-credentials/team-mail", "on": ["completed"],
                        "to": ["owner@example.com"]}]}


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_a_completed_run_is_announced_by_webhook_and_email(env, anthropic_api, hook, mailbox) -> None:
    anthropic_api.enqueue_tool_use(code="print(1)", text="Loading.", results=DEMO_RESULTS)
    anthropic_api.enqueue_text("# Report\nEast leads.")

    result = analyze(str(DEMO), env)

    assert result["status"] == "completed"
    [received] = hook.wait_for(1)
    text = received["json"]["text"]
    assert text.startswith("analysis retail-sales: completed\nAnalysis: retail-sales\nStatus: completed\n")
    assert f"Cost: ${result['cost_usd']:.4f}" in text
    assert f"/runs/flow-run/{result['flow_run_id']}" in text and "/artifacts/key/retail-sales-report" in text
    [raw_mail] = mailbox.messages
    mail = email.message_from_string(raw_mail, policy=email.policy.default)
    assert mail["Subject"] == "analysis retail-sales: completed" and mail["To"] == "owner@example.com"
    mail_text = mail.get_content().replace("\r\n", "\n")
    assert mail_text == text.split("\n", 1)[1] + "\n"  # the same body as the webhook's, after its subject line
    assert mailbox.logins == ["analyst@example.com"]
    assert_no_secret(received["text"], raw_mail, mail_text)
    # The run is over and never resumed: its saved model turns are gone.
    assert not list((Path(env["outputs.dir"]) / ".results").glob("model-turn-*"))


def test_a_failed_run_is_announced_and_keeps_its_saved_turns(env, anthropic_api, hook, mailbox) -> None:
    anthropic_api.enqueue_tool_use(code="print(1)")
    anthropic_api.enqueue_error(401, message=f"invalid x-api-key {API_KEY}")

    with pytest.raises(ModelError):
        analyze(str(DEMO), env)

    [received] = hook.wait_for(1)
    text = received["json"]["text"]
    assert text.startswith("analysis retail-sales: failed\n") and "Detail: ModelError" in text
    assert mailbox.messages == []  # the email entry asked for completed runs only
    assert_no_secret(received["text"])
    assert len(list((Path(env["outputs.dir"]) / ".results").glob("model-turn-*"))) == 1  # kept for a resume


def test_data_that_fails_its_schema_is_announced_as_validation_failed(env, anthropic_api, hook, tmp_path) -> None:
    bad_config = demo_with_an_invalid_row(tmp_path / "bad")

    with pytest.raises(DataInvalid):
        analyze(str(bad_config), env)

    [received] = hook.wait_for(1)
    assert received["json"]["text"].startswith("analysis retail-sales: validation failed\n")
    assert "Status: validation failed" in received["json"]["text"]
    assert "/artifacts/key/retail-sales-validation" in received["json"]["text"]
