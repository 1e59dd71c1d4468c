"""The generic HTTP provider: submits to a local server, signed callbacks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from django.test import Client

from tmc.gateways.http.signing import sign
from tmc.messaging.models import InboundMessage, Message
from tmc.messaging.services import message_send
from tmc.testing import CommitCapture, Tenant

SECRET = "shared-secret-for-tests"


class _Provider(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], dict[str, Any]]] = []
    answer_status = 200

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((dict(self.headers), body))
        self.send_response(self.answer_status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps({"msg_id": f"P-{len(self.received)}"}).encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider(settings: Any) -> Iterator[type[_Provider]]:
    """A provider on 127.0.0.1 that takes JSON and answers with an id."""
    _Provider.received = []
    _Provider.answer_status = 200
    server = HTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.TMC_GATEWAY = "http"
    settings.TMC_HTTP_GATEWAY_URL = f"http://127.0.0.1:{server.server_port}/send"
    settings.TMC_HTTP_GATEWAY_AUTH_HEADER = "Authorization: Bearer token-1"
    settings.TMC_HTTP_GATEWAY_SECRET = SECRET
    settings.TMC_HTTP_GATEWAY_FIELDS = {
        "to": "msisdn",
        "text": "message",
        "id": "msg_id",
    }
    yield _Provider
    server.shutdown()
    server.server_close()


def _signed_post(
    path: str, data: dict[str, Any], *, secret: str = SECRET, age: int = 0
) -> Any:
    body = json.dumps(data).encode()
    timestamp = str(int(time.time()) - age)
    return Client().post(
        path,
        body,
        content_type="application/json",
        headers={
            "X-TMC-Timestamp": timestamp,
            "X-TMC-Signature": sign(secret, timestamp, body),
        },
    )


def _sent(tenant: Tenant, committed: CommitCapture) -> Message:
    with committed(execute=True):
        message = message_send(user=tenant.user, recipient="07400 123456", body="Hi")
    message.refresh_from_db()
    return message


def test_a_message_is_posted_with_the_mapped_fields_and_auth_header(
    tenant_a: Tenant, committed: CommitCapture, provider: type[_Provider]
) -> None:
    message = _sent(tenant_a, committed)

    assert message.status == Message.Status.SUBMITTED
    assert message.provider_message_id == "P-1"
    [(headers, body)] = provider.received
    assert headers["Authorization"] == "Bearer token-1"
    assert body == {
        "msisdn": "+447400123456",
        "from": "AcmeAlerts",
        "message": "Hi",
        "reference": str(message.pk),
    }


def test_a_provider_refusal_fails_the_message(
    tenant_a: Tenant, committed: CommitCapture, provider: type[_Provider]
) -> None:
    provider.answer_status = 400

    message = _sent(tenant_a, committed)

    assert message.status == Message.Status.FAILED
    assert message.failure_reason == "provider answered HTTP 400"


def test_a_signed_report_delivers_the_message(
    tenant_a: Tenant, committed: CommitCapture, provider: type[_Provider]
) -> None:
    message = _sent(tenant_a, committed)

    response = _signed_post(
        "/gateways/http/http/reports/", {"msg_id": "P-1", "status": "delivered"}
    )

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


@pytest.mark.parametrize(
    ("path", "secret", "age"),
    [
        ("/gateways/http/http/reports/", "wrong-secret", 0),
        ("/gateways/http/http/reports/", SECRET, 301),
        ("/gateways/http/other/reports/", SECRET, 0),
    ],
)
def test_a_report_not_rightly_signed_is_refused_and_changes_nothing(
    tenant_a: Tenant,
    committed: CommitCapture,
    provider: type[_Provider],
    path: str,
    secret: str,
    age: int,
) -> None:
    message = _sent(tenant_a, committed)

    response = _signed_post(
        path, {"msg_id": "P-1", "status": "delivered"}, secret=secret, age=age
    )

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED


def test_an_unsigned_callback_is_refused(provider: type[_Provider], db: None) -> None:
    response = Client().post(
        "/gateways/http/http/inbound/",
        {"from": "+447400123456", "to": "+447700900123", "message": "Hi"},
        content_type="application/json",
    )

    assert response.status_code == 403
    assert not InboundMessage.objects.exists()


def test_a_signed_inbound_text_is_stored(provider: type[_Provider], db: None) -> None:
    response = _signed_post(
        "/gateways/http/http/inbound/",
        {"from": "+447400123456", "msisdn": "+447700900123", "message": "YES"},
    )

    assert response.status_code == 200
    inbound = InboundMessage.objects.get()
    assert inbound.body == "YES"
    assert inbound.sender == "+447400123456"


def test_the_generic_provider_cannot_say_what_it_received(db: None) -> None:
    """A message stuck mid-request is left for a person, never guessed about."""
    from tmc.gateways.base import GatewayError
    from tmc.gateways.http.adapter import HttpGateway

    with pytest.raises(GatewayError, match="cannot say"):
        HttpGateway().lookup(1)
