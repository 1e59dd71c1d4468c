"""Sending to many through the API: numbers, contacts and groups at once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tmc.api.tests.conftest import MakeClient
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    group_create,
    opt_out_add_by_user,
)
from tmc.identity.models import User
from tmc.messaging.models import Campaign, Message
from tmc.testing import Tenant, make_tenant


def _error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


def _balance(tenant: Tenant) -> int:
    tenant.organisation.refresh_from_db(fields=["credit_balance"])
    return int(tenant.organisation.credit_balance)


def test_a_campaign_to_numbers_and_a_group_queues_one_message_each(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    group = group_create(user=tenant_a.user, name="Staff")
    contact_create(
        user=tenant_a.user,
        number="07400 300003",
        details=ContactDetails(name="Ann"),
        group_ids=[group.pk],
    )
    opt_out_add_by_user(user=tenant_a.user, number="07400 300004")
    before = _balance(tenant_a)

    response = api_for(tenant_a.user).post(
        "/campaigns",
        {
            "to": [
                "07400 300001",
                "07400 300002",
                "07400 300001",
                "12",
                "07400 300004",
            ],
            "group_ids": [group.pk],
            "body": "The office is closed on Monday.",
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    campaign = Campaign.objects.get()
    assert body["id"] == campaign.pk
    assert (body["recipient_count"], body["parts"], body["credits"]) == (3, 1, 3)
    assert body["removed"] == {"invalid": 1, "duplicate": 1, "opted_out": 1}
    assert body["progress"] == {
        "queued": 3,
        "submitted": 0,
        "delivered": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert Message.objects.filter(campaign=campaign).count() == 3
    assert _balance(tenant_a) == before - 3


def test_the_campaign_and_its_messages_can_be_read_back(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    api.post("/messages", {"to": "07400 300009", "body": "One alone"})
    created = api.post(
        "/campaigns", {"to": ["07400 300001", "07400 300002"], "body": "Hi all"}
    ).json()

    detail = api.get(f"/campaigns/{created['id']}")
    listed = api.get("/messages", {"campaign_id": created["id"]})

    assert detail.status_code == 200, detail.content
    assert detail.json()["recipient_count"] == 2
    assert sum(detail.json()["progress"].values()) == 2
    items = listed.json()["items"]
    assert len(items) == 2
    assert {item["campaign_id"] for item in items} == {created["id"]}


def test_a_retry_with_the_same_key_makes_one_campaign(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    send = {"to": ["07400 300001", "07400 300002"], "body": "Hi all"}
    key = str(uuid.uuid4())

    first = api.post("/campaigns", send, HTTP_IDEMPOTENCY_KEY=key)
    second = api.post("/campaigns", send, HTTP_IDEMPOTENCY_KEY=key)
    other = api.post(
        "/campaigns", {**send, "body": "Changed"}, HTTP_IDEMPOTENCY_KEY=key
    )

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert Campaign.objects.count() == 1
    assert Message.objects.count() == 2


def test_a_campaign_the_balance_does_not_cover_is_402_and_changes_nothing(
    db: None, api_for: MakeClient
) -> None:
    poor = make_tenant("Poor", credits=2)

    response = api_for(poor.user).post(
        "/campaigns",
        {"to": ["07400 300001", "07400 300002", "07400 300003"], "body": "Hi"},
    )

    assert response.status_code == 402, response.content
    assert _error(response)["code"] == "insufficient_credit"
    assert not Campaign.objects.exists()
    assert not Message.objects.exists()
    assert _balance(poor) == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": [], "body": "Hi"}, "to"),
        ({"to": ["12", "34"], "body": "Hi"}, "to"),
        ({"to": ["07400 300001"], "body": "  "}, "body"),
        ({"to": ["07400 300001"], "body": "Hi", "sender": "Nobody"}, "sender"),
        ({"to": ["07400 300001"], "body": "Hi", "group_ids": [999999]}, "group_ids"),
        ({"to": ["07400 300001"], "body": "Hi", "contact_ids": [0]}, "contact_ids.0"),
        ({"to": "07400 300001", "body": "Hi"}, "to"),
        ({"to": ["07400 300001"]}, "body"),
        ({"to": ["07400 300001"], "body": "Hello {first_name}"}, "body"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    tenant_a: Tenant, api_for: MakeClient, payload: dict[str, Any], field: str
) -> None:
    response = api_for(tenant_a.user).post("/campaigns", payload)

    assert response.status_code == 422, response.content
    assert _error(response) | {"message": ""} == {
        "code": "validation_error",
        "message": "",
        "field": field,
    }
    assert not Campaign.objects.exists()


def test_another_organisations_group_is_refused(
    tenant_a: Tenant, tenant_b: Tenant, api_for: MakeClient
) -> None:
    theirs = group_create(user=tenant_b.user, name="Theirs")

    response = api_for(tenant_a.user).post(
        "/campaigns", {"group_ids": [theirs.pk], "body": "Hi"}
    )

    assert response.status_code == 422
    assert _error(response)["field"] == "group_ids"
    assert not Message.objects.exists()


def test_without_the_permission_to_send_in_bulk_it_is_403(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(can_send_bulk=False)
    tenant_a.user.refresh_from_db()

    response = api_for(tenant_a.user).post(
        "/campaigns", {"to": ["07400 300001"], "body": "Hi"}
    )

    assert response.status_code == 403
    assert _error(response)["code"] == "permission_denied"
    assert not Message.objects.exists()


def test_a_key_without_the_send_scope_is_403(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user, scopes=["read_messages"])

    response = api.post("/campaigns", {"to": ["07400 300001"], "body": "Hi"})

    assert response.status_code == 403
    assert _error(response)["code"] == "scope_missing"
    assert not Message.objects.exists()
