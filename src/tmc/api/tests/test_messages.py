"""Sending and reading messages through the API."""

from __future__ import annotations

from typing import Any

from django.utils.timezone import now

from tmc.api.tests.conftest import MakeClient
from tmc.boomerang.models import Question
from tmc.boomerang.services import numbers_add
from tmc.contacts.services import opt_out_add_by_user
from tmc.identity.models import User
from tmc.lib.phone import mask_number
from tmc.messaging.models import Message, VerifiedNumber
from tmc.testing import Tenant, make_tenant


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


def test_full_numbers_only_for_users_who_may_see_them(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(can_view_full_numbers=False)
    tenant_a.user.refresh_from_db()
    api_for(tenant_a.user).post("/messages", {"to": "07400 123456", "body": "Hi"})

    masked = api_for(tenant_a.user).get("/messages").json()["items"][0]["to"]
    full = api_for(tenant_a.controller).get("/messages").json()["items"][0]["to"]

    assert masked == mask_number("+447400123456")
    assert "123456" not in masked
    assert full == "+447400123456"


def test_a_question_is_sent_from_a_reply_number(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    numbers_add(numbers=["+447400900001"])

    response = api_for(tenant_a.user).post(
        "/messages",
        {
            "to": "07400 123456",
            "body": "Can you cover Saturday? Reply YES or NO",
            "question": {"title": "Saturday", "kind": "yes_no"},
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    question = Question.objects.get()
    assert body["question_id"] == question.pk
    assert body["sender"] == "+447400900001"
    detail = api_for(tenant_a.user).get(f"/messages/{body['id']}").json()
    assert detail["question_id"] == question.pk


def test_a_bad_question_sends_nothing(tenant_a: Tenant, api_for: MakeClient) -> None:
    numbers_add(numbers=["+447400900001"])

    response = api_for(tenant_a.user).post(
        "/messages",
        {
            "to": "07400 123456",
            "body": "Pick one",
            "question": {"title": "Pick", "kind": "choice", "options": ["Only"]},
        },
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "options"
    assert not Message.objects.exists()
    assert not Question.objects.exists()


def test_the_list_pages_by_cursor_and_filters(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    for n in range(5):
        api.post("/messages", {"to": f"07400 12345{n}", "body": f"Text {n}"})
    oldest = Message.objects.order_by("pk").values_list("pk", flat=True)[0]
    Message.objects.filter(pk=oldest).update(status=Message.Status.DELIVERED)

    first = api.get("/messages", {"limit": 2}).json()
    second = api.get("/messages", {"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get("/messages", {"limit": 2, "cursor": second["next_cursor"]}).json()
    delivered = api.get("/messages", {"status": "delivered"}).json()
    future = api.get("/messages", {"since": "2999-01-01T00:00:00Z"}).json()
    bad = api.get("/messages", {"cursor": "nonsense"})

    ids = [m["id"] for page in (first, second, third) for m in page["items"]]
    assert ids == list(
        Message.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    assert third["next_cursor"] is None
    assert [m["body"] for m in delivered["items"]] == ["Text 0"]
    assert future["items"] == []
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "cursor"


def test_a_preview_of_many_lists_who_is_left_out(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    opt_out_add_by_user(user=tenant_a.controller, number="07400 111222")

    response = api_for(tenant_a.controller).post(
        "/messages/preview",
        {
            "to": ["07400 123456", "not a number", "07400 123456", "07400 111222"],
            "body": "Hi",
        },
    )

    assert response.status_code == 200, response.content
    figures = response.json()
    assert figures["recipients"] == ["+447400123456"]
    assert figures["credits"] == 1
    reasons = [(r["reason"], r["index"]) for r in figures["removed"]]
    assert sorted(reasons) == [("duplicate", 2), ("invalid", 1), ("opted_out", 3)]
    assert not Message.objects.exists()


def test_on_the_free_trial_the_api_refuses_and_leaves_out_unverified_numbers(
    db: None, api_for: MakeClient
) -> None:
    trial = make_tenant("Trialco", credits=0, trial=True)
    verified = VerifiedNumber(organisation=trial.organisation, verified_at=now())
    verified.seal(number="+447400111222")
    verified.save()
    api = api_for(trial.controller)

    sent = api.post("/messages", {"to": "07400 123456", "body": "Hi"})
    preview = api.post(
        "/messages/preview", {"to": ["07400 111222", "07400 123456"], "body": "Hi"}
    )

    assert sent.status_code == 422, sent.content
    assert not Message.objects.filter(organisation=trial.organisation).exists()
    assert preview.status_code == 200, preview.content
    figures = preview.json()
    assert figures["recipients"] == ["+447400111222"]
    assert [(r["reason"], r["index"]) for r in figures["removed"]] == [
        ("not_verified", 1)
    ]
    assert figures["parts"] == 1
