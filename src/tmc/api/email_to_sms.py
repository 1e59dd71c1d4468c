"""Email to SMS: mail to ``<number>@TMC_SMS_DOMAIN`` is sent as a text.

``tmc smtp`` runs an SMTP server (aiosmtpd). A client either logs in with
SMTP AUTH, the username being a user's username and the password an API key
of that user with the ``send`` scope, or connects from an address in
TMC_SMTP_ALLOWED_IPS and sends from the registered email of an active user.
The text goes through ``message_send`` or ``campaign_send``, so opt-outs,
credits and limits apply as on the web, and the results come back to the
sender by email. Replies to those texts are emailed to the same address.

aiosmtpd runs an event loop; the ORM may not be used from it, so every
database step runs on a small thread pool, each job closing its connections
when done.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import logging
import re
import ssl
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import connections, transaction
from django.template.loader import render_to_string

from tmc.api.models import EmailOrigin, Scope
from tmc.api.services import KeyRefused, api_key_check
from tmc.contacts.models import Group
from tmc.identity.models import Permission, User
from tmc.lib.phone import mask_number
from tmc.messaging.campaigns import campaign_send
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.notifications.services import email_queue

logger = logging.getLogger(__name__)

T = TypeVar("T")

RECIPIENTS_MAX = 100
REFUSED_AUTH = "530 5.7.0 Authentication required"
REFUSED_SENDER = "550 5.7.1 The sender is not a user of this service"
REFUSED_NO_SENDER = "553 5.1.7 A sender address is needed for the results"
REFUSED_DOMAIN = "550 5.1.2 Only <number>@{domain} and <group>@groups.{domain}"

_SIGNATURE = {"-- ", "--"}
_ON_WROTE = re.compile(r"^On\s.*wrote:\s*$")

# Four threads: enough for a few clients at once; the jobs are short
# queries and one send each.
_db_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tmc-smtp-db")


def _in_db_thread(job: Callable[[], T]) -> T:
    try:
        return job()
    finally:
        connections.close_all()


def _blocking(job: Callable[[], T]) -> T:
    """Run ``job`` on the pool and wait: for aiosmtpd's synchronous hooks.

    The authenticator is called without ``await``, so the loop waits for
    one indexed query here; the sends themselves never block it.
    """
    return _db_pool.submit(_in_db_thread, job).result()


# --- the text --------------------------------------------------------------------


def text_strip(text: str) -> str:
    """Drop a signature, quoted lines and the quoted reply; trim whitespace.

    Everything from a signature delimiter ("-- ") or an "On … wrote:" line
    (which mail clients may wrap over two lines) is left out, as are lines
    starting with ">".
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for position, line in enumerate(lines):
        if line in _SIGNATURE:
            break
        if line.startswith("On "):
            following = lines[position + 1] if position + 1 < len(lines) else ""
            if _ON_WROTE.match(line) or _ON_WROTE.match(f"{line} {following}"):
                break
        if line.startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def message_text(message: EmailMessage) -> str:
    """The body's text/plain part, stripped; the subject if that is empty."""
    part = message.get_body(preferencelist=("plain",))
    body = ""
    if part is not None and isinstance(part, EmailMessage):
        body = text_strip(str(part.get_content()))
    text = body or str(message.get("Subject", "")).strip()
    # PostgreSQL text cannot hold NUL, and no handset shows one.
    return text.replace("\x00", "")


# --- who is sending --------------------------------------------------------------


def ip_allowed(address: str | None) -> bool:
    if not address or not settings.TMC_SMTP_ALLOWED_IPS:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(network, strict=False)
        for network in settings.TMC_SMTP_ALLOWED_IPS
    )


def user_for_key(*, username: str, raw_key: str, address: str | None) -> User | None:
    """The user an SMTP login names, if the key is theirs and may send."""
    try:
        key = api_key_check(raw_key=raw_key, address=address)
    except KeyRefused:
        return None
    if key.user.username != username or not key.has_scope(Scope.SEND):
        return None
    return key.user


def user_for_address(address: str) -> User | None:
    """The one active user whose registered email is ``address``."""
    found = list(
        User.objects.select_related("organisation").filter(
            email__iexact=address, is_active=True, organisation__is_active=True
        )[:2]
    )
    # Two users sharing an address cannot be told apart: neither may send.
    return found[0] if len(found) == 1 else None


# --- sending ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    recipient: str
    sent: bool
    detail: str


def _recipient_kind(address: str) -> tuple[str, str] | None:
    local, _, domain = address.rpartition("@")
    domain = domain.lower()
    if not local:
        return None
    if domain == settings.TMC_SMS_DOMAIN:
        return "number", local
    if domain == f"groups.{settings.TMC_SMS_DOMAIN}":
        return "group", local.lower()
    return None


def recipient_accepted(address: str) -> bool:
    return _recipient_kind(address) is not None


def _shown(number: str) -> str:
    # Never echo a full number in the report: it is mailed.
    return mask_number(number if number.startswith("+") else f"+{number}")


def _reason(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return str(exc) or "Not allowed."


def _send_number(*, user: User, origin: str, number: str, text: str) -> Outcome:
    try:
        with transaction.atomic():
            message = message_send(user=user, recipient=number, body=text)
            EmailOrigin.objects.create(message=message, address=origin)
    except ValidationError as exc:
        return Outcome(_shown(number), False, _reason(exc))
    return Outcome(
        _shown(number),
        True,
        f"message {message.pk}, {message.parts} part(s), {message.credits} credit(s)",
    )


def _group_named(user: User, name: str) -> Group | None:
    for group in Group.objects.for_user(user):
        if re.sub(r"\s+", "-", group.name.strip().lower()) == name:
            return group
    return None


def _send_group(*, user: User, origin: str, name: str, text: str) -> Outcome:
    label = f"group {name}"
    group = _group_named(user, name)
    if group is None:
        return Outcome(label, False, "There is no group with this name.")
    try:
        with transaction.atomic():
            campaign = campaign_send(
                user=user, numbers_text="", group_ids=[group.pk], body=text
            )
            EmailOrigin.objects.bulk_create(
                EmailOrigin(message_id=message_id, address=origin)
                for message_id in Message.objects.filter(campaign=campaign).values_list(
                    "pk", flat=True
                )
            )
    except (ValidationError, PermissionDenied) as exc:
        return Outcome(label, False, _reason(exc))
    return Outcome(
        label,
        True,
        f"campaign {campaign.pk} to {campaign.recipient_count} recipient(s), "
        f"{campaign.parts} part(s) each",
    )


def _email(address: str, template: str, context: dict[str, Any]) -> None:
    subject = render_to_string(f"api/{template}_subject.txt", context).strip()
    text = render_to_string(f"api/{template}.txt", context)
    html = render_to_string(f"api/{template}.html", context)
    email_queue(address, subject, text, html)


def email_to_sms_send(
    *, user: User, origin: str, recipients: Sequence[str], text: str
) -> list[Outcome]:
    """Send ``text`` to each recipient address and email the results to ``origin``.

    More than one recipient, or a group, needs the bulk permission, as on
    the web; without it nothing is sent. Each number is a text of its own,
    so one refusal (an opt-out, say) does not stop the others.
    """
    kinds = [kind for kind in map(_recipient_kind, recipients) if kind is not None]
    bulk = len(kinds) > 1 or any(kind == "group" for kind, _ in kinds)
    outcomes: list[Outcome] = []
    if bulk and not user.has_permission(Permission.SEND_BULK):
        outcomes = [
            Outcome(
                _shown(value) if kind == "number" else f"group {value}",
                False,
                "Sending to more than one recipient needs permission to send in bulk.",
            )
            for kind, value in kinds
        ]
    else:
        for kind, value in kinds:
            if kind == "number":
                outcomes.append(
                    _send_number(user=user, origin=origin, number=value, text=text)
                )
            else:
                outcomes.append(
                    _send_group(user=user, origin=origin, name=value, text=text)
                )

    sent = sum(outcome.sent for outcome in outcomes)
    _email(origin, "email_to_sms_report", {"outcomes": outcomes, "sent": sent})
    logger.info(
        "email to sms user_id=%s sent=%s refused=%s",
        user.pk,
        sent,
        len(outcomes) - sent,
    )
    return outcomes


def email_reply_forward(*, message: Message, sender: str, body: str) -> bool:
    """Email a reply to a text sent by email back to the mailbox it came from.

    The sender's number is masked; the body is the user's own conversation.
    The email leaves after commit. False when the text was not sent by email.
    """
    origin = EmailOrigin.objects.filter(message=message).first()
    if origin is None:
        return False
    _email(
        origin.address,
        "email_to_sms_reply",
        {"sender_masked": mask_number(sender), "message_id": message.pk, "body": body},
    )
    return True


# --- the SMTP server -------------------------------------------------------------


def _peer_host(session: Session) -> str | None:
    # Typed as a string by aiosmtpd, but it is the socket's (host, port).
    peer: object = session.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return None


def authenticate(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    mechanism: str,
    auth_data: Any,
) -> AuthResult:
    """aiosmtpd's authenticator: the password is an API key with ``send``."""
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    username = auth_data.login.decode("utf-8", "replace")
    raw_key = auth_data.password.decode("utf-8", "replace")
    address = _peer_host(session)
    user = _blocking(
        lambda: user_for_key(username=username, raw_key=raw_key, address=address)
    )
    if user is None:
        logger.info("smtp login refused peer=%s", address)
        return AuthResult(success=False, handled=False)
    return AuthResult(success=True, auth_data=user.pk)


class EmailToSmsHandler:
    """aiosmtpd handler: check sender and recipients, then send the texts."""

    def _user(self, session: Session, mail_from: str) -> User | None:
        # ``authenticate`` put the user's id here.
        user_id: object = session.auth_data
        if session.authenticated and isinstance(user_id, int):
            # Checked again: the user may have been deactivated since login.
            return (
                User.objects.select_related("organisation")
                .filter(pk=user_id, is_active=True, organisation__is_active=True)
                .first()
            )
        if ip_allowed(_peer_host(session)):
            return user_for_address(mail_from)
        return None

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        # The results are mailed to this address, so it must be one.
        try:
            validate_email(address)
        except ValidationError:
            return REFUSED_NO_SENDER
        if not session.authenticated:
            if not ip_allowed(_peer_host(session)):
                return REFUSED_AUTH
            user = await server.loop.run_in_executor(
                _db_pool, _in_db_thread, lambda: user_for_address(address)
            )
            if user is None:
                return REFUSED_SENDER
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not recipient_accepted(address):
            return REFUSED_DOMAIN.format(domain=settings.TMC_SMS_DOMAIN)
        if len(envelope.rcpt_tos) >= RECIPIENTS_MAX:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        text = message_text(parsed)
        if not text:
            return "554 5.6.0 The email has no text to send"
        origin = str(envelope.mail_from or "")
        recipients = list(envelope.rcpt_tos)

        def send() -> str:
            user = self._user(session, origin)
            if user is None:
                return REFUSED_AUTH
            try:
                email_to_sms_send(
                    user=user, origin=origin, recipients=recipients, text=text
                )
            except Exception:
                # aiosmtpd would otherwise answer with the exception's text.
                # A permanent error: some texts may be out already, and a
                # client retrying a 4xx would send them twice.
                logger.exception("email to sms failed user_id=%s", user.pk)
                return "554 5.3.0 Sending failed; some texts may have been sent"
            return "250 2.0.0 Accepted; the results follow by email"

        return await server.loop.run_in_executor(_db_pool, _in_db_thread, send)


def tls_context() -> ssl.SSLContext | None:
    """The STARTTLS context from TMC_SMTP_TLS_CERT and _KEY, if both are set."""
    if not (settings.TMC_SMTP_TLS_CERT and settings.TMC_SMTP_TLS_KEY):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.TMC_SMTP_TLS_CERT, settings.TMC_SMTP_TLS_KEY)
    return context


def controller_kwargs() -> dict[str, Any]:
    """What the aiosmtpd Controller needs beyond host and port.

    AUTH is offered only after STARTTLS unless TMC_SMTP_ALLOW_PLAIN is set,
    so a key never crosses the network in clear by accident.
    """
    return {
        "authenticator": authenticate,
        "auth_require_tls": not settings.TMC_SMTP_ALLOW_PLAIN,
        "tls_context": tls_context(),
        "decode_data": False,
        # A text is at most a few hundred characters; 1 MB leaves room for
        # HTML alternatives and signatures without accepting attachments.
        "data_size_limit": 1_000_000,
    }
