"""Receivers that stand in for Slack, Teams and a mail server in the flow tests: a webhook receiver and an
SMTP server (aiosmtpd) on loopback, both real servers the notification blocks send to."""

from __future__ import annotations

import socket
from collections.abc import Iterator

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
