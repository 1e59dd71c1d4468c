"""Webhooks: endpoints, signed deliveries, retries and the dead letters.

An event becomes one ``WebhookDelivery`` per subscribed endpoint, sent by a
task after the commit that caused it. A delivery that is not answered with a
2xx is tried again with doubling delays; one still failing a day after the
event is given up ("dead") and waits on the webhooks page for a resend.

Each body is signed: ``TMC-Signature: t=<unix>,v1=<hex>``, the hex being
HMAC-SHA256 over ``"<t>.<body>"`` with the endpoint's secret. During a
rotation the old secret signs as well, giving a second ``v1=``.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts import encryption
from tmc.api.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from tmc.audit.services import event_record
from tmc.identity.models import Permission, User
from tmc.lib.phone import mask_number
from tmc.messaging.models import InboundMessage, Message

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105  # nosec B105 (a public prefix)
SEND_TIMEOUT = 10
FIRST_DELAY = timedelta(seconds=30)
LONGEST_DELAY = timedelta(hours=2)
GIVE_UP_AFTER = timedelta(hours=24)
# How long the old secret keeps signing after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)
# A due delivery is claimed by pushing its next attempt this far ahead, so a
# second sender running at the same time skips it.
CLAIM_FOR = timedelta(minutes=2)
URL_MAX = 500


class UnsafeTarget(Exception):
    """The URL may not be called: wrong scheme or a private address."""


def _address_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def target_check(url: str) -> str | None:
    """Raise UnsafeTarget unless ``url`` may receive webhooks now.

    Only https, and only hosts whose every address is public: a webhook must
    not become a way to reach the platform's own network. The names are
    resolved on each call, at creation and again before each send, since
    DNS can change in between. Returns the checked address a send must
    connect to (so a second, different DNS answer cannot be used), or None
    when TMC_WEBHOOK_ALLOW_PRIVATE lifts both rules, for development and
    tests.
    """
    allow_private = settings.TMC_WEBHOOK_ALLOW_PRIVATE
    parts = urlsplit(url)
    allowed_schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in allowed_schemes:
        raise UnsafeTarget("The address must start with https://.")
    if not parts.hostname:
        raise UnsafeTarget("The address names no host.")
    if parts.username or parts.password:
        raise UnsafeTarget("The address may not carry a user name or password.")
    if allow_private:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise UnsafeTarget("The host name does not resolve.") from exc
    addresses = {str(info[4][0]) for info in found}
    if not addresses or any(_address_private(a) for a in addresses):
        raise UnsafeTarget(
            "The host resolves to a private, loopback or reserved address."
        )
    return str(found[0][4][0])


def signature_header(body: bytes, secrets_: Iterable[str], *, at: int) -> str:
    signed = str(at).encode() + b"." + body
    parts = [f"t={at}"]
    for secret in secrets_:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def _events_parse(events: Iterable[str]) -> list[str]:
    chosen = sorted({event for event in events if event})
    if not chosen or any(event not in WebhookEvent.values for event in chosen):
        raise ValidationError(
            {"events": f"Choose from {', '.join(WebhookEvent.values)}."}
        )
    return chosen


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str


def _manager_check(actor: User, organisation_id: int) -> None:
    if actor.organisation_id != organisation_id or not actor.is_manager:
        raise PermissionDenied("Controllers and Administrators of this account.")


def webhook_endpoint_create(
    *,
    actor: User,
    url: str,
    events: Iterable[str],
    full_numbers: bool = False,
    request: HttpRequest | None = None,
) -> CreatedEndpoint:
    """Add an endpoint; its secret is returned only here."""
    assert actor.organisation_id is not None
    _manager_check(actor, actor.organisation_id)
    url = url.strip()
    errors: dict[str, str] = {}
    if len(url) > URL_MAX:
        errors["url"] = f"The address is longer than {URL_MAX} characters."
    else:
        try:
            target_check(url)
        except UnsafeTarget as exc:
            errors["url"] = str(exc)
    try:
        chosen = _events_parse(events)
    except ValidationError as exc:
        errors["events"] = exc.message_dict["events"][0]
        chosen = []
    if full_numbers and not actor.has_permission(Permission.VIEW_FULL_NUMBERS):
        errors["full_numbers"] = "You may not see full numbers yourself."
    if errors:
        raise ValidationError(errors)

    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint(
        organisation_id=actor.organisation_id,
        url=url,
        events=chosen,
        full_numbers=full_numbers,
        created_by=actor,
    )
    endpoint.secret_seal(secret)
    with transaction.atomic():
        endpoint.save()
        event_record(
            action="webhook.created",
            organisation=actor.organisation,
            actor=actor,
            target=endpoint,
            details={
                "webhook": endpoint.pk,
                "host": urlsplit(url).hostname,
                "events": chosen,
                "full_numbers": full_numbers,
            },
            request=request,
        )
    logger.info(
        "webhook created id=%s organisation_id=%s",
        endpoint.pk,
        endpoint.organisation_id,
    )
    return CreatedEndpoint(endpoint=endpoint, secret=secret)


def webhook_secret_rotate(
    *,
    actor: User,
    endpoint: WebhookEndpoint,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> str:
    """Give the endpoint a new secret; the old one signs for a day more."""
    _manager_check(actor, endpoint.organisation_id)
    moment = now or timezone.now()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        current = locked.secrets(moment)[0]
        locked.previous_until = moment + ROTATION_OVERLAP
        # Sealed under its own column's context, so the two cannot be swapped.
        locked.previous_secret_sealed = encryption.encrypt(
            locked.organisation_id,
            current,
            context=encryption.field_context(
                WebhookEndpoint.TABLE, "previous_secret", locked.uid
            ),
        )
        locked.secret_seal(secret)
        locked.save(
            update_fields=["secret_sealed", "previous_secret_sealed", "previous_until"]
        )
        event_record(
            action="webhook.secret_rotated",
            organisation=locked.organisation,
            actor=actor,
            target=locked,
            details={"webhook": locked.pk},
            request=request,
        )
    endpoint.refresh_from_db()
    return secret


def webhook_endpoint_delete(
    *, actor: User, endpoint: WebhookEndpoint, request: HttpRequest | None = None
) -> None:
    _manager_check(actor, endpoint.organisation_id)
    with transaction.atomic():
        event_record(
            action="webhook.deleted",
            organisation=endpoint.organisation,
            actor=actor,
            target=endpoint,
            details={"webhook": endpoint.pk, "url": endpoint.url},
            request=request,
        )
        endpoint.delete()


def webhook_delivery_resend(
    *,
    actor: User,
    delivery: WebhookDelivery,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> bool:
    """Try a dead delivery once more, now; False if it is not dead."""
    _manager_check(actor, delivery.organisation_id)
    moment = now or timezone.now()
    with transaction.atomic():
        revived = WebhookDelivery.objects.filter(
            pk=delivery.pk, state=WebhookDelivery.State.DEAD
        ).update(state=WebhookDelivery.State.PENDING, next_attempt_at=moment)
        if revived:
            event_record(
                action="webhook.delivery_resent",
                organisation=delivery.organisation,
                actor=actor,
                target=delivery,
                details={
                    "webhook": delivery.endpoint_id,
                    "delivery": str(delivery.uid),
                },
                request=request,
            )
            transaction.on_commit(lambda: _enqueue(delivery.pk))
    return bool(revived)


# Events


def _number(endpoint: WebhookEndpoint, number: str) -> str:
    creator = endpoint.created_by
    if (
        endpoint.full_numbers
        and creator is not None
        and creator.is_active
        and creator.has_permission(Permission.VIEW_FULL_NUMBERS)
    ):
        return number
    return mask_number(number)


def _deliveries_create(
    *,
    organisation_id: int,
    event: WebhookEvent,
    data: Any,
    now: datetime,
) -> list[WebhookDelivery]:
    """One delivery per endpoint listening; ``data(endpoint)`` builds the body."""
    endpoints = WebhookEndpoint.objects.filter(
        organisation_id=organisation_id
    ).select_related("created_by")
    made = []
    for endpoint in endpoints:
        if event.value not in endpoint.events:
            continue
        delivery = WebhookDelivery(
            organisation_id=organisation_id,
            endpoint=endpoint,
            event=event.value,
            created_at=now,
            next_attempt_at=now,
        )
        payload = {
            "id": str(delivery.uid),
            "type": event.value,
            "created_at": now.isoformat(),
            "data": data(endpoint),
        }
        delivery.seal(body=json.dumps(payload, separators=(",", ":")))
        delivery.save()
        made.append(delivery)
    return made


def message_status_notify(*, message_id: int, now: datetime | None = None) -> None:
    """Queue ``message.status`` deliveries for a message that became final."""
    moment = now or timezone.now()
    message = Message.objects.filter(pk=message_id).first()
    if message is None or message.status not in Message.FINAL_STATUSES:
        return

    def data(endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {
            "message_id": message.pk,
            "status": message.status,
            "recipient": _number(endpoint, message.recipient),
            "failure_reason": message.failure_reason,
            "completed_at": (
                message.completed_at.isoformat() if message.completed_at else None
            ),
        }

    made = _deliveries_create(
        organisation_id=message.organisation_id,
        event=WebhookEvent.MESSAGE_STATUS,
        data=data,
        now=moment,
    )
    for delivery in made:
        _enqueue(delivery.pk)


def reply_notify(*, inbound_id: int, now: datetime | None = None) -> None:
    """Queue ``reply.received`` deliveries for a reply to an organisation."""
    moment = now or timezone.now()
    inbound = InboundMessage.objects.filter(pk=inbound_id).first()
    if inbound is None or inbound.organisation_id is None:
        return

    def data(endpoint: WebhookEndpoint) -> dict[str, Any]:
        return {
            "reply_id": inbound.pk,
            "in_reply_to": inbound.in_reply_to_id,
            "sender": _number(endpoint, inbound.sender),
            "recipient": inbound.recipient,
            "body": inbound.body,
        }

    made = _deliveries_create(
        organisation_id=inbound.organisation_id,
        event=WebhookEvent.REPLY_RECEIVED,
        data=data,
        now=moment,
    )
    for delivery in made:
        _enqueue(delivery.pk)


def _enqueue(delivery_id: int) -> None:
    from tmc.api.tasks import webhook_delivery_send_task

    webhook_delivery_send_task(delivery_id)


# Sending


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: one could point at an address we would refuse."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to a given address, verified against the host name.

    The certificate is still checked for the URL's host (SNI and hostname
    verification use it); only the TCP connection goes to the address that
    ``target_check`` approved, so a DNS answer changed since cannot redirect
    the request to a private address.
    """

    def __init__(self, *args: Any, pinned: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pinned = pinned

    def connect(self) -> None:
        raw = socket.create_connection((self.pinned, self.port), self.timeout)
        context: ssl.SSLContext = self._context  # type: ignore[attr-defined]
        self.sock = context.wrap_socket(raw, server_hostname=self.host)


class _PinnedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, pinned: str) -> None:
        super().__init__(context=ssl.create_default_context())
        self.pinned = pinned

    def https_open(self, req: urllib.request.Request) -> Any:
        connection = functools.partial(_PinnedHTTPSConnection, pinned=self.pinned)
        return self.do_open(connection, req, context=self._context)  # type: ignore[attr-defined]


def _post(
    url: str, body: bytes, headers: dict[str, str], *, pinned: str | None = None
) -> int:
    handlers: list[Any] = [_NoRedirect]
    if pinned is not None:
        handlers.append(_PinnedHTTPSHandler(pinned))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (the scheme is checked by target_check)
    try:
        with opener.open(request, timeout=SEND_TIMEOUT) as response:  # nosec B310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failure: 30 s, doubling, at most 2 h."""
    delay: timedelta = FIRST_DELAY * (2 ** max(attempts - 1, 0))
    return min(delay, LONGEST_DELAY)


def webhook_delivery_send(
    *, delivery_id: int, now: datetime | None = None
) -> WebhookDelivery | None:
    """Try one pending delivery if it is due; return it as it ends up."""
    moment = now or timezone.now()
    delivery = (
        WebhookDelivery.objects.select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None or delivery.state != WebhookDelivery.State.PENDING:
        return delivery
    if delivery.next_attempt_at > moment:
        return delivery
    # Claim it: of two senders racing for the same due delivery, only the
    # one whose conditional UPDATE matches sends it.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        state=WebhookDelivery.State.PENDING,
        next_attempt_at=delivery.next_attempt_at,
    ).update(next_attempt_at=moment + CLAIM_FOR)
    if not claimed:
        return delivery

    endpoint = delivery.endpoint
    body = delivery.body.encode()
    error = ""
    try:
        pinned = target_check(endpoint.url)
        status = _post(
            endpoint.url,
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": "TMC-Webhooks/1",
                "TMC-Delivery": str(delivery.uid),
                "TMC-Event": delivery.event,
                "TMC-Signature": signature_header(
                    body, endpoint.secrets(moment), at=int(moment.timestamp())
                ),
            },
            pinned=pinned,
        )
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except UnsafeTarget as exc:
        error = str(exc)
    except (OSError, ValueError) as exc:
        error = type(exc).__name__

    delivery.attempts += 1
    delivery.last_error = error[:200]
    if not error:
        delivery.state = WebhookDelivery.State.DELIVERED
        delivery.delivered_at = moment
    else:
        following = moment + retry_delay(delivery.attempts)
        if following > delivery.created_at + GIVE_UP_AFTER and delivery.attempts > 1:
            delivery.state = WebhookDelivery.State.DEAD
        delivery.next_attempt_at = following
    delivery.save(
        update_fields=[
            "attempts",
            "last_error",
            "state",
            "delivered_at",
            "next_attempt_at",
        ]
    )
    logger.info(
        "webhook delivery id=%s webhook_id=%s attempt=%s state=%s error=%s",
        delivery.pk,
        endpoint.pk,
        delivery.attempts,
        delivery.state,
        error or "-",
    )
    return delivery


def webhook_deliveries_send_due(*, now: datetime | None = None) -> int:
    """Try every pending delivery that is due; return how many were tried."""
    moment = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, next_attempt_at__lte=moment
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:500]
    )
    for delivery_id in due:
        webhook_delivery_send(delivery_id=delivery_id, now=moment)
    return len(due)


KEEP_FOR = timedelta(days=30)


def webhook_deliveries_purge(*, now: datetime | None = None) -> int:
    """Delete delivered and given-up deliveries older than 30 days.

    Pending ones are kept whatever their age; they end within a day anyway.
    """
    moment = now or timezone.now()
    deleted, _ = WebhookDelivery.objects.filter(
        state__in=[WebhookDelivery.State.DELIVERED, WebhookDelivery.State.DEAD],
        created_at__lt=moment - KEEP_FOR,
    ).delete()
    if deleted:
        logger.info("webhook deliveries purged count=%s", deleted)
    return int(deleted)
