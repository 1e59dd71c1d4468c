"""Sending and reading messages through the API."""

from __future__ import annotations

from typing import Any

from tmc.api.tests.conftest import MakeClient
from tmc.lib.phone import mask_number
from tmc.messaging.models import Message
from tmc.testing import Tenant


def test_a_send_queues_one_message_and_answers_201(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)

    response = api.post("/messages", {"to": "07400 123456", "body": "Hello"})

    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    message = Message.objects.get()
    assert body["id"] == message.pk
    assert body["status"] == "queued"
    assert (body["parts"], body["credits"], body["encoding"]) == (1, 1, "GSM-7")
    assert body["to"] == mask_number("+447400123456")


def test_preview_gives_the_figures_the_send_charges(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.controller)
    text = "Ünïcode text that is quite long " * 3

    preview = api.post("/messages/preview", {"to": ["07400 123456"], "body": text})
    sent = api.post("/messages", {"to": "07400 123456", "body": text})

    assert preview.status_code == 200, preview.content
    figures = preview.json()
    assert sent.status_code == 201
    message = Message.objects.get()
    assert (figures["encoding"], figures["parts"], figures["credits"]) == (
        message.encoding,
        message.parts,
        message.credits,
    )
    tenant_a.organisation.refresh_from_db()
    assert figures["balance_after"] == tenant_a.organisation.credit_balance
    assert figures["recipients"] == ["+447400123456"]
