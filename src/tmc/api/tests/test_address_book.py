"""Contacts, groups, opt-outs and replies through the API."""

from __future__ import annotations

from typing import Any

from tmc.api.tests.conftest import MakeClient
from tmc.boomerang.services import numbers_add
from tmc.contacts.models import Contact, Group, OptOut
from tmc.gateways.services import inbound_receive
from tmc.identity.models import User
from tmc.lib.phone import mask_number
from tmc.testing import Tenant


def test_contacts_and_groups_round_trip(tenant_a: Tenant, api_for: MakeClient) -> None:
    api = api_for(tenant_a.controller)

    group = api.post("/groups", {"name": "Volunteers"}).json()
    made = api.post(
        "/contacts",
        {
            "number": "07400 123456",
            "name": "Ann",
            "fields": {"team": "Blue"},
            "group_ids": [group["id"]],
        },
    )
    contact = made.json()
    changed = api.patch(f"/contacts/{contact['id']}", {"email": "ann@example.com"})
    listed = api.get("/contacts").json()
    renamed = api.patch(f"/groups/{group['id']}", {"name": "Helpers"})
    removed = api.delete(f"/contacts/{contact['id']}")
    gone = api.delete(f"/groups/{group['id']}")

    assert made.status_code == 201, made.content
    assert contact["number"] == "+447400123456"
    assert contact["group_ids"] == [group["id"]]
    assert changed.json()["email"] == "ann@example.com"
    assert changed.json()["name"] == "Ann"
    assert [c["id"] for c in listed["items"]] == [contact["id"]]
    assert renamed.json()["name"] == "Helpers"
    assert removed.status_code == gone.status_code == 204
    assert not Contact.objects.exists()
    assert not Group.objects.exists()


def test_a_duplicate_number_is_422_on_number(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    api.post("/contacts", {"number": "07400 123456"})

    response = api.post("/contacts", {"number": "+44 7400 123456"})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "number"


def test_bulk_upsert_adds_updates_and_reports_refusals(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    api.post("/contacts", {"number": "07400 123456", "name": "Old"})

    response = api.post(
        "/contacts/bulk",
        {
            "contacts": [
                {"number": "07400 123456", "name": "New"},
                {"number": "07400 123457", "name": "Ben"},
                {"number": "nope"},
                {"number": "07400 123458", "email": "not an email"},
            ]
        },
    )

    body: dict[str, Any] = response.json()
    assert response.status_code == 200, response.content
    assert (body["created"], body["updated"], body["refused"]) == (1, 1, 2)
    assert [i["result"] for i in body["items"]] == [
        "updated",
        "created",
        "refused",
        "refused",
    ]
    assert body["items"][3]["field"] == "email"
    names = sorted(c.name for c in Contact.objects.all())
    assert names == ["Ben", "New"]


def test_opt_outs_list_and_add(tenant_a: Tenant, api_for: MakeClient) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(can_view_full_numbers=False)
    tenant_a.user.refresh_from_db()
    api = api_for(tenant_a.user)

    added = api.post("/opt-outs", {"number": "07400 123456"})
    again = api.post("/opt-outs", {"number": "07400 123456"})
    listed = api.get("/opt-outs").json()
    sent = api.post("/messages", {"to": "07400 123456", "body": "Hi"})

    assert added.status_code == again.status_code == 201
    assert added.json()["id"] == again.json()["id"]
    assert OptOut.objects.count() == 1
    assert listed["items"][0]["number"] == mask_number("+447400123456")
    assert sent.status_code == 422
    assert sent.json()["error"]["field"] == "to"


def test_replies_are_listed_and_marked_read(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    numbers_add(numbers=["+447400900001"])
    api = api_for(tenant_a.user)
    asked = api.post(
        "/messages",
        {
            "to": "07400 123456",
            "body": "Saturday?",
            "question": {"title": "Sat", "kind": "yes_no"},
        },
    ).json()
    inbound_receive(
        gateway="simulator", sender="+447400123456", recipient="+447400900001",
        body="Yes please",
    )  # fmt: skip

    unread = api.get("/replies", {"unread": "true"}).json()["items"]
    reply = unread[0]
    marked = api.post(f"/replies/{reply['id']}/read")
    after = api.get("/replies", {"unread": "true"}).json()["items"]
    colleague = api_for(tenant_a.user.__class__.objects.get(pk=tenant_a.user.pk))

    assert reply["body"] == "Yes please"
    assert reply["in_reply_to"] == asked["id"]
    assert reply["question_id"] == asked["question_id"]
    assert marked.status_code == 200
    assert marked.json()["read_at"] is not None
    assert after == []
    assert colleague.get("/replies").status_code == 200
