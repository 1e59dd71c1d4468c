"""Webhooks: signed deliveries to a real local receiver, retries, SSRF rules."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import urllib.error
from collections.abc import Iterator
from datetime import timedelta
from email.message import Message as Message_
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from tmc.api.models import WebhookDelivery, WebhookEndpoint
from tmc.api.webhooks import (
    GIVE_UP_AFTER,
    _post,
    webhook_deliveries_purge,
    webhook_deliveries_send_due,
    webhook_delivery_resend,
    webhook_endpoint_create,
    webhook_secret_rotate,
)
from tmc.audit.models import Event
from tmc.gateways.base import DeliveryState
from tmc.gateways.services import delivery_report_receive, inbound_receive
from tmc.messaging.models import Message
from tmc.messaging.services import message_close, message_send
from tmc.testing import Tenant

HANDSET = "+447400123456"


class Receiver:
    """An HTTP server on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        # Headers as received: their names compare without regard to case.
        self.received: list[tuple[Message_, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.received.append((self.headers, self.rfile.read(length)))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings: Any) -> Iterator[Receiver]:
    settings.TMC_WEBHOOK_ALLOW_PRIVATE = True
    server = Receiver()
    yield server
    server.close()


def _verify(headers: Message_, body: bytes, secret: str) -> bool:
    """What a receiver does: any v1 made with its secret will do."""
    parts = [part.split("=", 1) for part in headers["TMC-Signature"].split(",")]
    stamp = next(value for key, value in parts if key == "t")
    expected = hmac.new(
        secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return any(
        key == "v1" and hmac.compare_digest(value, expected) for key, value in parts
    )


def _submitted(tenant: Tenant, provider_id: str) -> Message:
    message = message_send(user=tenant.user, recipient="07400 123456", body="Hi")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTED,
        gateway="simulator",
        provider_message_id=provider_id,
    )
    return message


def _report(provider_id: str, state: DeliveryState = DeliveryState.DELIVERED) -> None:
    delivery_report_receive(
        gateway="simulator", provider_message_id=provider_id, state=state
    )


def test_a_delivery_report_reaches_the_receiver_signed(
    tenant_a: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    made = webhook_endpoint_create(
        actor=tenant_a.administrator, url=receiver.url, events=["message.status"]
    )
    message = _submitted(tenant_a, "p-1")

    with django_capture_on_commit_callbacks(execute=True):
        _report("p-1")

    ((headers, body),) = receiver.received
    assert _verify(headers, body, made.secret)
    assert not _verify(headers, body, "whsec_wrong")
    payload = json.loads(body)
    assert payload["type"] == "message.status"
    assert payload["id"] == headers["TMC-Delivery"]
    assert payload["data"]["message_id"] == message.pk
    assert payload["data"]["status"] == "delivered"
    assert payload["data"]["recipient"] != HANDSET
    assert "123456" not in payload["data"]["recipient"]
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("delivered", 1)


def test_a_reply_reaches_the_receiver_with_the_sender_masked(
    tenant_a: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    made = webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["reply.received"]
    )
    message = message_send(user=tenant_a.user, recipient="07400 123456", body="Hi")

    with django_capture_on_commit_callbacks(execute=True):
        inbound = inbound_receive(
            gateway="simulator", sender=HANDSET, recipient=message.sender, body="Yes"
        )

    ((headers, body),) = receiver.received
    assert _verify(headers, body, made.secret)
    payload = json.loads(body)
    assert payload["type"] == "reply.received"
    assert payload["data"]["reply_id"] == inbound.pk
    assert payload["data"]["body"] == "Yes"
    assert "123456" not in payload["data"]["sender"]


def test_full_numbers_only_when_asked_and_permitted(
    tenant_a: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    tenant_a.controller.can_view_full_numbers = True
    tenant_a.controller.save()
    webhook_endpoint_create(
        actor=tenant_a.controller,
        url=receiver.url,
        events=["reply.received"],
        full_numbers=True,
    )
    message = message_send(user=tenant_a.user, recipient="07400 123456", body="Hi")

    with django_capture_on_commit_callbacks(execute=True):
        inbound_receive(
            gateway="simulator", sender=HANDSET, recipient=message.sender, body="Yes"
        )

    payload = json.loads(receiver.received[0][1])
    assert payload["data"]["sender"] == HANDSET


def test_full_numbers_are_refused_to_a_creator_without_the_permission(
    tenant_a: Tenant, receiver: Receiver
) -> None:
    tenant_a.administrator.can_view_full_numbers = False
    tenant_a.administrator.save()

    with pytest.raises(ValidationError) as caught:
        webhook_endpoint_create(
            actor=tenant_a.administrator,
            url=receiver.url,
            events=["reply.received"],
            full_numbers=True,
        )

    assert "full_numbers" in caught.value.message_dict


def test_other_organisations_and_other_events_hear_nothing(
    tenant_a: Tenant,
    tenant_b: Tenant,
    receiver: Receiver,
    django_capture_on_commit_callbacks: Any,
) -> None:
    webhook_endpoint_create(
        actor=tenant_b.controller, url=receiver.url, events=["message.status"]
    )
    webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["reply.received"]
    )
    _submitted(tenant_a, "p-1")

    with django_capture_on_commit_callbacks(execute=True):
        _report("p-1")

    assert receiver.received == []
    assert not WebhookDelivery.objects.exists()


def test_a_failing_receiver_is_retried_with_growing_delays_then_given_up(
    tenant_a: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    receiver.status = 500
    webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["message.status"]
    )
    _submitted(tenant_a, "p-1")
    with django_capture_on_commit_callbacks(execute=True):
        _report("p-1", DeliveryState.FAILED)
    delivery = WebhookDelivery.objects.get()
    start = delivery.created_at

    delays = []
    moment = delivery.next_attempt_at
    while delivery.state == WebhookDelivery.State.PENDING:
        moment = delivery.next_attempt_at
        webhook_deliveries_send_due(now=moment)
        delivery.refresh_from_db()
        delays.append(delivery.next_attempt_at - moment)

    assert delivery.state == WebhookDelivery.State.DEAD
    assert delays == sorted(delays)
    assert delays[0] < delays[-1]
    assert moment - start <= GIVE_UP_AFTER
    assert delivery.next_attempt_at - start > GIVE_UP_AFTER
    assert delivery.attempts == len(receiver.received)
    assert len({json.loads(body)["id"] for _, body in receiver.received}) == 1
    assert delivery.last_error == "HTTP 500"

    later = moment + timedelta(days=2)
    assert webhook_deliveries_send_due(now=later) == 0

    receiver.status = 204
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    page = client.get("/api-keys/webhooks/")
    assert f"delivery-{delivery.pk}".encode() in page.content
    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post(f"/api-keys/webhooks/deliveries/{delivery.pk}/resend/")

    assert resent.status_code == 302
    delivery.refresh_from_db()
    assert delivery.state == WebhookDelivery.State.DELIVERED
    assert json.loads(receiver.received[-1][1])["id"] == str(delivery.uid)
    assert Event.objects.filter(action="webhook.delivery_resent").exists()
    assert not webhook_delivery_resend(actor=tenant_a.controller, delivery=delivery)


def test_the_page_lists_in_a_fixed_number_of_queries(
    tenant_a: Tenant, receiver: Receiver, django_assert_max_num_queries: Any
) -> None:
    for _ in range(5):
        made = webhook_endpoint_create(
            actor=tenant_a.controller, url=receiver.url, events=["message.status"]
        )
        dead = WebhookDelivery(
            organisation=tenant_a.organisation,
            endpoint=made.endpoint,
            event="message.status",
            state=WebhookDelivery.State.DEAD,
        )
        dead.seal(body="{}")
        dead.save()
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    client.get("/api-keys/webhooks/")

    with django_assert_max_num_queries(12):
        page = client.get("/api-keys/webhooks/")

    assert page.content.count(b"Resend") == 5


def test_during_a_rotation_both_secrets_sign_then_only_the_new_one(
    tenant_a: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    made = webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["message.status"]
    )
    new = webhook_secret_rotate(actor=tenant_a.controller, endpoint=made.endpoint)
    _submitted(tenant_a, "p-1")
    with django_capture_on_commit_callbacks(execute=True):
        _report("p-1")

    headers, body = receiver.received[0]
    assert headers["TMC-Signature"].count("v1=") == 2
    assert _verify(headers, body, made.secret)
    assert _verify(headers, body, new)

    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secrets(timezone.now() + timedelta(days=2)) == [new]


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://0.0.0.0/hook",
        "http://example.com/hook",
        "ftp://example.com/hook",
    ],
)
def test_private_and_plain_targets_are_refused(tenant_a: Tenant, url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        webhook_endpoint_create(
            actor=tenant_a.controller, url=url, events=["message.status"]
        )

    assert "url" in caught.value.message_dict
    assert not WebhookEndpoint.objects.exists()


def test_the_target_is_checked_again_when_sending(
    tenant_a: Tenant,
    receiver: Receiver,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """An address that turned private since creation is not called."""
    webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["message.status"]
    )
    settings.TMC_WEBHOOK_ALLOW_PRIVATE = False
    _submitted(tenant_a, "p-1")

    with django_capture_on_commit_callbacks(execute=True):
        _report("p-1")

    assert receiver.received == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == WebhookDelivery.State.PENDING
    assert "https" in delivery.last_error


def test_the_page_adds_rotates_and_deletes(
    tenant_a: Tenant, receiver: Receiver
) -> None:
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    added = client.post(
        "/api-keys/webhooks/", {"url": receiver.url, "events": ["message.status"]}
    )
    secret = added.context["secret"]
    endpoint = WebhookEndpoint.objects.get()
    again = client.get("/api-keys/webhooks/")
    rotated = client.post(f"/api-keys/webhooks/{endpoint.pk}/rotate/")
    deleted = client.post(f"/api-keys/webhooks/{endpoint.pk}/delete/")

    assert added.status_code == 201
    assert secret.encode() in added.content
    assert secret.encode() not in again.content
    assert rotated.status_code == 200
    assert rotated.context["secret"] != secret
    assert deleted.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    actions = set(Event.objects.values_list("action", flat=True))
    assert {"webhook.created", "webhook.secret_rotated", "webhook.deleted"} <= actions


def test_a_user_cannot_open_the_page(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)

    assert client.get("/api-keys/webhooks/").status_code == 403


def test_an_expired_message_is_reported_too(
    tenant_a: Tenant, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["message.status"]
    )
    message = message_send(user=tenant_a.user, recipient="07400 123456", body="Hi")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.QUEUED)

    with django_capture_on_commit_callbacks(execute=True):
        closed = message_close(
            message_id=message.pk,
            status=Message.Status.EXPIRED,
            reason="Too late",
            from_statuses=[Message.Status.QUEUED],
        )

    assert closed
    payload = json.loads(receiver.received[0][1])
    assert payload["data"]["status"] == "expired"


def test_a_send_connects_to_the_checked_address_not_a_new_dns_answer() -> None:
    """The host name is only used for TLS; the TCP connection is pinned."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)
    port = listener.getsockname()[1]
    accepted: list[str] = []

    def accept() -> None:
        connection, peer = listener.accept()
        accepted.append(peer[0])
        connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()

    # The name does not resolve at all: reaching the listener proves the
    # connection went to the pinned address. The TLS handshake then fails.
    with pytest.raises(urllib.error.URLError):
        _post(f"https://hooks.invalid:{port}/x", b"{}", {}, pinned="127.0.0.1")
    thread.join(5)
    listener.close()

    assert accepted == ["127.0.0.1"]


def test_finished_deliveries_are_forgotten_after_30_days(
    tenant_a: Tenant, receiver: Receiver
) -> None:
    made = webhook_endpoint_create(
        actor=tenant_a.controller, url=receiver.url, events=["message.status"]
    )
    now = timezone.now()
    for state in WebhookDelivery.State.values:
        row = WebhookDelivery(
            organisation=tenant_a.organisation,
            endpoint=made.endpoint,
            event="message.status",
            state=state,
            created_at=now - timedelta(days=31),
        )
        row.seal(body="{}")
        row.save()

    assert webhook_deliveries_purge(now=now) == 2
    assert list(WebhookDelivery.objects.values_list("state", flat=True)) == ["pending"]
