"""Emails leave through a real SMTP server on 127.0.0.1, and survive its refusals."""

from __future__ import annotations

import os
import socket
import subprocess  # nosec B404
import sys
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import transaction

from tmc.identity.models import Role
from tmc.identity.services import user_create
from tmc.notifications.tasks import email_send_task
from tmc.settings import email_settings
from tmc.testing import PASSWORD, Tenant, wait_until


class Mailbox:
    """An SMTP handler that keeps what it accepts, refusing the first N tries."""

    def __init__(self, refuse_first: int = 0) -> None:
        self.refuse_left = refuse_first
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.refuse_left:
            self.refuse_left -= 1
            return "451 Requested action aborted: try again later"
        content = envelope.content
        assert isinstance(content, bytes)
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(content)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def smtp_settings(settings: Any, smtp_server: tuple[Mailbox, int]) -> Mailbox:
    """Point Django's mail at the server, exactly as TMC_EMAIL_URL would."""
    mailbox, port = smtp_server
    url = f"smtp://127.0.0.1:{port}?from=alerts@tmc.example"
    for name, value in email_settings(url, settings.TMC_HOME).items():
        setattr(settings, name, value)
    return mailbox


def test_a_notice_is_delivered_through_smtp(
    smtp_settings: Mailbox, tenant_a: Tenant, huey_worker: None
) -> None:
    smtp_settings.received.clear()  # the fixtures' own notices
    with transaction.atomic():
        user_create(
            organisation=tenant_a.organisation,
            username="acme-newcomer",
            email="newcomer@acme.example",
            password=PASSWORD,
            role=Role.USER,
            created_by=tenant_a.controller,
        )

    wait_until(lambda: len(smtp_settings.received) >= 2)
    recipients = {r for rcpts, _ in smtp_settings.received for r in rcpts}
    assert recipients == {tenant_a.controller.email, tenant_a.administrator.email}
    _, email = smtp_settings.received[0]
    assert email["From"] == "alerts@tmc.example"
    assert email["Subject"] == "TMC: new user acme-newcomer in Acme"
    assert email.is_multipart()  # text and HTML


def test_a_refused_email_is_retried_until_it_is_accepted(
    smtp_settings: Mailbox, huey_worker: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp_settings.refuse_left = 2
    monkeypatch.setattr(email_send_task.task_class, "default_retry_delay", 0)

    email_send_task("someone@acme.example", "TMC: test", "Hello", "")

    wait_until(lambda: len(smtp_settings.received) == 1)
    assert smtp_settings.refuse_left == 0
    assert smtp_settings.received[0][0] == ["someone@acme.example"]


def test_tmc_email_url_reaches_the_server_from_the_command_line(
    smtp_server: tuple[Mailbox, int],
) -> None:
    """The environment variable alone configures the real process's mail."""
    mailbox, port = smtp_server
    environment = {
        **os.environ,
        "TMC_EMAIL_URL": f"smtp://127.0.0.1:{port}?from=ops@tmc.example",
        "TMC_HOME": str(settings.TMC_HOME),
    }

    completed = subprocess.run(  # nosec B603
        [sys.executable, "-m", "tmc", "manage", "sendtestemail", "ops@acme.example"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert [rcpts for rcpts, _ in mailbox.received] == [["ops@acme.example"]]
    assert mailbox.received[0][1]["From"] == "ops@tmc.example"
