"""Email to SMS through a real SMTP server on loopback and smtplib."""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import CommandError, call_command

from tmc.api.email_to_sms import EmailToSmsHandler, controller_kwargs, text_strip
from tmc.api.models import EmailOrigin, Scope
from tmc.api.services import api_key_create
from tmc.contacts.models import OptOut
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    group_create,
    opt_out_add,
)
from tmc.gateways.services import inbound_receive
from tmc.identity.models import User
from tmc.messaging.models import Message
from tmc.testing import Tenant

NUMBER = "+447400123456"
OTHER = "+447400123789"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(transactional_db: None, settings: Any) -> Iterator[int]:
    """An email-to-SMS server on a free loopback port; yields the port."""
    settings.TMC_SMS_DOMAIN = "sms.test"
    settings.TMC_SMTP_ALLOW_PLAIN = True
    settings.TMC_SMTP_ALLOWED_IPS = []
    port = _free_port()
    controller = Controller(
        EmailToSmsHandler(), hostname="127.0.0.1", port=port, **controller_kwargs()
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def _key(user: Any, scopes: list[str] | None = None) -> str:
    return api_key_create(
        actor=None, user=user, name="Mail", scopes=scopes or [Scope.SEND]
    ).raw


def _email(to: list[str], body: str = "Hello there", subject: str = "") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "user@acme.example"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    return message


def _send(port: int, message: EmailMessage, login: tuple[str, str] | None) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        if login is not None:
            client.login(*login)
        return client.send_message(message, from_addr="user@acme.example")


def test_a_logged_in_email_becomes_a_text_and_a_report(
    server: int, tenant_a: Tenant, mailoutbox: list[Any]
) -> None:
    """The body is the text; the report names the message and masks the number."""
    key = _key(tenant_a.user)

    _send(server, _email([f"{NUMBER}@sms.test"]), (tenant_a.user.username, key))

    message = Message.objects.get()
    assert message.body == "Hello there"
    assert message.recipient == NUMBER
    assert message.created_by_id == tenant_a.user.pk
    assert EmailOrigin.objects.get(message=message).address == "user@acme.example"
    report = mailoutbox[-1]
    assert report.to == ["user@acme.example"]
    assert f"message {message.pk}, 1 part(s)" in report.body
    assert NUMBER not in report.body
    assert key not in report.body


def test_without_a_login_mail_is_refused_with_530(
    server: int, tenant_a: Tenant
) -> None:
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        _send(server, _email([f"{NUMBER}@sms.test"]), None)

    assert refused.value.smtp_code == 530
    assert not Message.objects.exists()


def test_a_wrong_key_is_refused_with_535(server: int, tenant_a: Tenant) -> None:
    with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
        _send(server, _email([f"{NUMBER}@sms.test"]), (tenant_a.user.username, "tmc_x"))

    assert refused.value.smtp_code == 535


def test_another_users_key_or_a_key_without_send_is_refused(
    server: int, tenant_a: Tenant
) -> None:
    others = _key(tenant_a.administrator)
    read_only = _key(tenant_a.user, scopes=[Scope.READ_MESSAGES])

    for password in (others, read_only):
        with pytest.raises(smtplib.SMTPAuthenticationError):
            _send(
                server,
                _email([f"{NUMBER}@sms.test"]),
                (tenant_a.user.username, password),
            )


def test_an_unknown_domain_is_refused_with_550(server: int, tenant_a: Tenant) -> None:
    key = _key(tenant_a.user)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send(
            server,
            _email([f"{NUMBER}@elsewhere.example"]),
            (tenant_a.user.username, key),
        )

    assert refused.value.recipients[f"{NUMBER}@elsewhere.example"][0] == 550


def test_an_allowed_address_sends_as_the_user_with_that_email(
    server: int, tenant_a: Tenant, settings: Any, mailoutbox: list[Any]
) -> None:
    settings.TMC_SMTP_ALLOWED_IPS = ["127.0.0.0/8"]

    _send(server, _email([f"{NUMBER}@sms.test"]), None)

    assert Message.objects.get().created_by_id == tenant_a.user.pk
    assert mailoutbox[-1].to == ["user@acme.example"]


def test_an_allowed_address_with_an_unknown_or_inactive_sender_is_refused(
    server: int, tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_SMTP_ALLOWED_IPS = ["127.0.0.0/8"]
    User.objects.filter(pk=tenant_a.user.pk).update(is_active=False)

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        _send(server, _email([f"{NUMBER}@sms.test"]), None)

    assert refused.value.smtp_code == 550
    assert not Message.objects.exists()


def test_an_opted_out_number_is_refused_by_email_and_the_others_sent(
    server: int, tenant_a: Tenant, mailoutbox: list[Any]
) -> None:
    opt_out_add(
        organisation=tenant_a.organisation, number=OTHER, source=OptOut.Source.MANUAL
    )
    key = _key(tenant_a.user)

    _send(
        server,
        _email([f"{NUMBER}@sms.test", f"{OTHER}@sms.test"]),
        (tenant_a.user.username, key),
    )

    assert [m.recipient for m in Message.objects.all()] == [NUMBER]
    report = mailoutbox[-1]
    assert report.subject == "Email to SMS: 1 of 2 sent"
    assert "refused" in report.body
    assert "opted out" in report.body.lower()
    assert OTHER not in report.body


def test_several_recipients_need_the_bulk_permission(
    server: int, tenant_a: Tenant, mailoutbox: list[Any]
) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(can_send_bulk=False)
    key = _key(tenant_a.user)

    _send(
        server,
        _email([f"{NUMBER}@sms.test", f"{OTHER}@sms.test"]),
        (tenant_a.user.username, key),
    )

    assert not Message.objects.exists()
    assert "permission to send in bulk" in mailoutbox[-1].body


def test_an_empty_body_sends_the_subject(server: int, tenant_a: Tenant) -> None:
    key = _key(tenant_a.user)

    _send(
        server,
        _email(
            [f"{NUMBER}@sms.test"], body="\n-- \nJo Bloggs\n", subject="Door code 4"
        ),
        (tenant_a.user.username, key),
    )

    assert Message.objects.get().body == "Door code 4"


def test_a_reply_to_a_text_sent_by_email_comes_back_by_email(
    server: int, tenant_a: Tenant, mailoutbox: list[Any]
) -> None:
    key = _key(tenant_a.user)
    _send(server, _email([f"{NUMBER}@sms.test"]), (tenant_a.user.username, key))
    message = Message.objects.get()

    inbound_receive(
        gateway="simulator",
        sender=NUMBER,
        recipient=message.sender,
        body="Thanks & see you",
    )

    reply = mailoutbox[-1]
    assert reply.to == ["user@acme.example"]
    assert "Thanks & see you" in reply.body
    assert "Thanks &amp; see you" in reply.alternatives[0].content
    assert NUMBER not in reply.body + reply.subject


def test_a_group_address_sends_a_campaign_to_the_group(
    server: int, tenant_a: Tenant, mailoutbox: list[Any]
) -> None:
    group = group_create(user=tenant_a.user, name="Weekend staff")
    for number in (NUMBER, OTHER):
        contact_create(
            user=tenant_a.user,
            number=number,
            details=ContactDetails(),
            group_ids=[group.pk],
        )
    key = _key(tenant_a.user)

    _send(
        server,
        _email(["weekend-staff@groups.sms.test"], body="Rota is out"),
        (tenant_a.user.username, key),
    )

    messages = Message.objects.filter(campaign__isnull=False)
    assert sorted(m.recipient for m in messages) == sorted([NUMBER, OTHER])
    assert EmailOrigin.objects.filter(message__in=messages).count() == 2
    assert "campaign" in mailoutbox[-1].body
    assert "to 2 recipient(s)" in mailoutbox[-1].body


def test_an_unknown_group_is_refused_by_email(
    server: int, tenant_a: Tenant, mailoutbox: list[Any]
) -> None:
    key = _key(tenant_a.user)

    _send(server, _email(["nobody@groups.sms.test"]), (tenant_a.user.username, key))

    assert not Message.objects.exists()
    assert "no group with this name" in mailoutbox[-1].body


def test_an_empty_envelope_sender_is_refused(server: int, tenant_a: Tenant) -> None:
    """The results go to the envelope sender, so there must be one."""
    key = _key(tenant_a.user)

    with smtplib.SMTP("127.0.0.1", server, timeout=30) as client:
        client.login(tenant_a.user.username, key)
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.send_message(_email([f"{NUMBER}@sms.test"]), from_addr="")

    assert refused.value.smtp_code == 553


def test_a_nul_in_the_body_is_dropped(server: int, tenant_a: Tenant) -> None:
    key = _key(tenant_a.user)

    _send(
        server,
        _email([f"{NUMBER}@sms.test"], body="Hi\x00 there"),
        (tenant_a.user.username, key),
    )

    assert Message.objects.get().body == "Hi there"


def test_without_starttls_a_login_is_not_offered(
    server: int, tenant_a: Tenant, settings: Any
) -> None:
    """Keys are never taken in clear unless TMC_SMTP_ALLOW_PLAIN is set."""
    settings.TMC_SMTP_ALLOW_PLAIN = False
    port = _free_port()
    controller = Controller(
        EmailToSmsHandler(), hostname="127.0.0.1", port=port, **controller_kwargs()
    )
    controller.start()
    try:
        with pytest.raises(smtplib.SMTPNotSupportedError):
            _send(port, _email([f"{NUMBER}@sms.test"]), (tenant_a.user.username, "k"))
    finally:
        controller.stop()


def _self_signed(directory: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_after_starttls_a_key_logs_in_and_sends(
    server: int, tenant_a: Tenant, settings: Any, tmp_path: Path
) -> None:
    settings.TMC_SMTP_ALLOW_PLAIN = False
    settings.TMC_SMTP_TLS_CERT, settings.TMC_SMTP_TLS_KEY = _self_signed(tmp_path)
    key = _key(tenant_a.user)
    port = _free_port()
    controller = Controller(
        EmailToSmsHandler(), hostname="127.0.0.1", port=port, **controller_kwargs()
    )
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.starttls(
                context=ssl.create_default_context(cafile=settings.TMC_SMTP_TLS_CERT)
            )
            client.login(tenant_a.user.username, key)
            client.send_message(
                _email([f"{NUMBER}@sms.test"]), from_addr="user@acme.example"
            )
    finally:
        controller.stop()

    assert Message.objects.get().recipient == NUMBER


def test_the_command_refuses_to_take_keys_in_clear_by_default(
    settings: Any,
) -> None:
    settings.TMC_SMTP_ALLOW_PLAIN = False
    settings.TMC_SMTP_TLS_CERT = settings.TMC_SMTP_TLS_KEY = ""

    with pytest.raises(CommandError, match="STARTTLS"):
        call_command("smtp")


def test_the_command_refuses_a_bad_allow_list(settings: Any) -> None:
    settings.TMC_SMTP_ALLOWED_IPS = ["10.0.0.0/8", "not-a-network"]

    with pytest.raises(CommandError, match="not-a-network"):
        call_command("smtp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello  \n\n", "Hello"),
        ("Hello\n-- \nJo Bloggs\n01234 567890", "Hello"),
        ("Hello\n> quoted\n>> deeper\nBye", "Hello\nBye"),
        (
            "Yes please\n\nOn Tue, 1 Dec 2026, Jo <jo@x.example> wrote:\n> Lunch?",
            "Yes please",
        ),
        (
            "Yes\nOn Tue, 1 Dec 2026 at 10:00, Jo Bloggs\n<jo@x.example> wrote:\n> Hi",
            "Yes",
        ),
        ("On time today\nsee you", "On time today\nsee you"),
        ("a -- b stays", "a -- b stays"),
        ("\r\nLine one\r\nLine two\r\n", "Line one\nLine two"),
        ("-- \nonly a signature", ""),
    ],
)
def test_text_strip(text: str, expected: str) -> None:
    assert text_strip(text) == expected
