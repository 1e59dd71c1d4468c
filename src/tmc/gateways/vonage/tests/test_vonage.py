"""The Vonage SMS API provider against a local fake of Vonage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tmc.gateways.base import GatewayError
from tmc.gateways.models import GatewayProvider, InboundPart
from tmc.gateways.providers import provider_save
from tmc.gateways.registry import gateway_named
from tmc.gateways.vonage.tests.fake import (
    API_KEY,
    API_SECRET,
    SIGNATURE_SECRET,
    FakeVonage,
)
from tmc.messaging.models import InboundMessage, Message
from tmc.messaging.services import message_send
from tmc.routing.services import route_set
from tmc.testing import CommitCapture, Tenant

REPORTS = "/gateways/vonage/vonage-uk/reports/"
INBOUND = "/gateways/vonage/vonage-uk/inbound/"


@pytest.fixture
def vonage(db: None) -> Iterator[FakeVonage]:
    fake = FakeVonage()
    server, _thread = fake.serve()
    provider_save(
        provider=None,
        name="vonage-uk",
        kind=GatewayProvider.Kind.VONAGE,
        enabled=True,
        throughput=30,
        settings={
            "api_key": API_KEY,
            "signature_method": "sha256",
            "base_url": fake.url,
            "reports_url": fake.url,
        },
        secrets={"api_secret": API_SECRET, "signature_secret": SIGNATURE_SECRET},
    )
    route_set(prefix="+44", gateways=["vonage-uk"])
    yield fake
    server.shutdown()
    server.server_close()


def _sent(tenant: Tenant, committed: CommitCapture, body: str = "Hi") -> Message:
    with committed(execute=True):
        message = message_send(user=tenant.user, recipient="07400 123456", body=body)
    message.refresh_from_db()
    return message


def test_a_message_is_submitted_as_json_with_our_id_as_client_ref(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage
) -> None:
    message = _sent(tenant_a, committed, body="Café at 6?")

    assert message.status == Message.Status.SUBMITTED
    assert message.gateway == "vonage-uk"
    [body] = vonage.submissions
    assert body == {
        "api_key": API_KEY,
        "api_secret": API_SECRET,
        "from": "AcmeAlerts",
        "to": "447400123456",
        "text": "Café at 6?",
        "type": "text",
        "client-ref": str(message.pk),
    }
    assert message.provider_message_id == vonage.records[0]["message_id"]


@pytest.mark.parametrize("how", ["form", "json", "query"])
def test_a_signed_receipt_delivers_the_message_however_it_is_sent(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage, how: str
) -> None:
    message = _sent(tenant_a, committed)
    receipt = vonage.receipt(vonage.submit_answer_part(0))

    if how == "form":
        response = Client().post(REPORTS, receipt)
    elif how == "json":
        response = Client().post(REPORTS, receipt, content_type="application/json")
    else:
        response = Client().get(REPORTS, receipt)

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_a_failed_receipt_fails_the_message_with_the_error_code(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage
) -> None:
    message = _sent(tenant_a, committed)

    Client().post(REPORTS, vonage.receipt(vonage.submit_answer_part(0), "failed", "6"))

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.failure_reason == "failed (err-code 6)"


@pytest.mark.parametrize("forgery", ["wrong-sig", "changed", "stale", "no-sig"])
def test_a_receipt_not_rightly_signed_is_refused_and_changes_nothing(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage, forgery: str
) -> None:
    message = _sent(tenant_a, committed)
    receipt = vonage.receipt(vonage.submit_answer_part(0))
    if forgery == "wrong-sig":
        receipt["sig"] = "0" * 64
    elif forgery == "changed":
        receipt["status"] = "failed"
    elif forgery == "stale":
        receipt = vonage.signed(
            {k: v for k, v in receipt.items() if k not in ("sig", "nonce")}, age=301
        )
    else:
        del receipt["sig"]

    response = Client().post(REPORTS, receipt)

    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED


def test_another_providers_webhook_address_is_refused(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage
) -> None:
    _sent(tenant_a, committed)
    receipt = vonage.receipt(vonage.submit_answer_part(0))

    response = Client().post("/gateways/vonage/vonage-us/reports/", receipt)

    assert response.status_code == 403


def test_a_refusal_about_the_number_fails_and_one_about_the_account_retries(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage
) -> None:
    vonage.status_for["447400123456"] = "29"
    refused = _sent(tenant_a, committed)
    assert refused.status == Message.Status.FAILED
    assert refused.failure_reason.startswith("Vonage status 29")

    vonage.status_for["447400123456"] = "1"
    throttled = _sent(tenant_a, committed)
    assert throttled.status == Message.Status.RETRYING


def test_any_part_of_a_long_text_settles_it_through_the_client_ref(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage
) -> None:
    message = _sent(tenant_a, committed, body="x" * 300)
    assert len(vonage.records) == 2

    Client().post(REPORTS, vonage.receipt(vonage.submit_answer_part(1)))

    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_a_receipt_before_the_submission_is_recorded_asks_vonage_to_retry(
    tenant_a: Tenant, vonage: FakeVonage
) -> None:
    message = message_send(user=tenant_a.user, recipient="07400 123456", body="Hi")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SUBMITTING)
    part = {"to": "447400123456", "message-id": "0A00000000000099"}
    part["client-ref"] = str(message.pk)

    response = Client().post(REPORTS, vonage.receipt(part))

    assert response.status_code == 503
    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTING


def test_inbound_parts_are_joined_and_a_replay_is_ignored(vonage: FakeVonage) -> None:
    second = vonage.text("447400123456", "447700900123", "two", concat=(41, 2, 2))
    first = vonage.text("447400123456", "447700900123", "One and ", concat=(41, 2, 1))

    assert Client().post(INBOUND, second).json() == {"complete": False}
    assert InboundPart.objects.count() == 1
    assert Client().post(INBOUND, second).json() == {"repeat": True}
    assert Client().post(INBOUND, first).json() == {"complete": True}

    inbound = InboundMessage.objects.get()
    assert inbound.body == "One and two"
    assert (inbound.sender, inbound.recipient) == ("+447400123456", "+447700900123")
    assert inbound.gateway == "vonage-uk"
    assert not InboundPart.objects.exists()


def test_an_unsigned_inbound_text_is_refused(vonage: FakeVonage) -> None:
    text = vonage.text("447400123456", "447700900123", "STOP")
    del text["sig"]

    assert Client().post(INBOUND, text).status_code == 403
    assert not InboundMessage.objects.exists()


def test_the_reconciler_finds_a_message_in_the_reports_by_client_ref(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage
) -> None:
    for n in range(3):
        _sent(tenant_a, committed, body=f"Text {n}")
    wanted = Message.objects.order_by("pk").last()
    assert wanted is not None
    gateway = gateway_named("vonage-uk")

    # Records come two a page: the third is on the second page.
    assert gateway.lookup(wanted.pk) == wanted.provider_message_id
    assert gateway.lookup(wanted.pk + 1000) is None


def test_a_reports_api_that_cannot_answer_leaves_the_message_for_later(
    tenant_a: Tenant, committed: CommitCapture, vonage: FakeVonage, settings: Any
) -> None:
    message = _sent(tenant_a, committed)
    vonage.reports_status = 503

    with pytest.raises(GatewayError) as failed:
        gateway_named("vonage-uk").lookup(message.pk)
    assert not failed.value.permanent
