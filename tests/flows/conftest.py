"""Receivers that stand in for Slack, Teams and a mail server in the flow tests: a webhook receiver and an
SMTP server (aiosmtpd) on loopback, both real servers the notification blocks send to."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.fakes.webhook_receiver import WebhookReceiver

SMTP_PASSWORD = "smtp-password-planted-987654"


class Mailbox:
    """What the SMTP server received, and who logged in."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's handler name
        self.messages.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password.decode() == SMTP_PASSWORD)


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port, authenticator=box.authenticate,
                            auth_require_tls=False)
    controller.start()
    box.port = port
    try:
        yield box
    finally:
        controller.stop()


DEMO = Path(__file__).resolve().parents[2] / "configs" / "retail-sales.yaml"


def demo_with_an_invalid_row(folder: Path) -> Path:
    """A copy of the demo whose sixth row names a region its schema does not allow; returns its config."""
    shutil.copytree(DEMO.parent, folder, ignore=shutil.ignore_patterns("outputs", "*.json"))
    data = folder / "data" / "retail_sales.csv"
    lines = data.read_text().splitlines()
    lines[5] = lines[5].replace("north", "nowhere")
    data.write_text("\n".join(lines) + "\n")
    return folder / DEMO.name
