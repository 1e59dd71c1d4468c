"""One error shape for every failure, and idempotent retries."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from tmc.api.models import IdempotencyRecord
from tmc.api.tests.conftest import MakeClient
from tmc.messaging.models import Message
from tmc.testing import Tenant, make_tenant

SEND = {"to": "07400 123456", "body": "Hello"}


def _error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "Hello"}, "to"),
        ({"to": "12", "body": "Hello"}, "to"),
        ({"to": "07400 123456", "body": " "}, "body"),
        ({"to": "07400 123456", "body": "Hi", "sender": "Nobody"}, "sender"),
        ({"to": 5, "body": []}, "to"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    tenant_a: Tenant, api_for: MakeClient, payload: dict[str, Any], field: str
) -> None:
    response = api_for(tenant_a.user).post("/messages", payload)

    assert response.status_code == 422, response.content
    error = _error(response)
    assert error["code"] == "validation_error"
    assert error["field"] == field
    assert not Message.objects.exists()


def test_a_body_that_is_not_json_is_422(tenant_a: Tenant, api_for: MakeClient) -> None:
    api = api_for(tenant_a.user)

    response = api.client.post(
        "/api/v1/messages", b"{not json", content_type="application/json"
    )

    assert response.status_code == 422
    assert _error(response)["code"] == "validation_error"


def test_no_credit_is_402(db: None, api_for: MakeClient) -> None:
    broke = make_tenant("Broke", credits=0)

    response = api_for(broke.user).post("/messages", SEND)

    assert response.status_code == 402
    assert _error(response)["code"] == "insufficient_credit"


def test_another_organisations_message_is_404(
    tenant_a: Tenant, tenant_b: Tenant, api_for: MakeClient
) -> None:
    theirs = api_for(tenant_b.user).post("/messages", SEND).json()["id"]

    mine = api_for(tenant_a.controller)
    response = mine.get(f"/messages/{theirs}")
    nothing = mine.get("/messages/999999")

    assert response.status_code == nothing.status_code == 404
    assert response.json() == nothing.json()
    assert _error(response)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/messages/abc", "/messages/99999999999999999999"])
def test_a_malformed_id_is_not_a_500(
    tenant_a: Tenant, api_for: MakeClient, path: str
) -> None:
    response = api_for(tenant_a.user).get(path)

    assert response.status_code in {404, 422}
    assert "error" in response.json()


@override_settings(TMC_API_RATE_PER_SECOND=0.01, TMC_API_RATE_BURST=2)
def test_over_the_rate_is_429_with_retry_after(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)

    statuses = [api.get("/account/balance").status_code for _ in range(3)]
    limited = api.get("/account/balance")

    assert statuses == [200, 200, 429]
    assert _error(limited)["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1


def test_a_retry_with_the_same_key_replays_without_sending(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    key = str(uuid.uuid4())

    first = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY=key)
    second = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY=key)

    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Message.objects.count() == 1
    assert "Hello" not in IdempotencyRecord.objects.get().response_sealed


def test_the_same_key_with_another_body_is_409(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="k1")

    response = api.post(
        "/messages", {**SEND, "body": "Other"}, HTTP_IDEMPOTENCY_KEY="k1"
    )

    assert response.status_code == 409
    assert _error(response)["code"] == "idempotency_mismatch"
    assert Message.objects.count() == 1


def test_a_failed_request_keeps_no_record_so_it_can_be_retried(
    db: None, api_for: MakeClient
) -> None:
    broke = make_tenant("Broke", credits=0)
    api = api_for(broke.user)

    refused = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="k2")
    assert refused.status_code == 402

    from tmc.accounts.services import credits_add

    credits_add(organisation=broke.organisation, amount=5, reason="Top-up")
    retried = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="k2")

    assert retried.status_code == 201
    assert Message.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_with_one_key_send_once(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    """The unique (user, key) row makes the second wait, then replay."""
    api = api_for(tenant_a.user)
    barrier = threading.Barrier(4)
    answers: list[Any] = []

    def post() -> None:
        try:
            barrier.wait()
            response = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="race")
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert Message.objects.count() == 1
    ids = {body.get("id") for status, body in answers if status == 201}
    assert ids == {Message.objects.get().pk}
    # A request that found the first still at work may be told so, never
    # answered with a second send.
    others = [body["error"]["code"] for status, body in answers if status != 201]
    assert set(others) <= {"idempotency_in_progress"}


def test_a_lone_surrogate_is_422_not_a_500(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)

    response = api.client.post(
        "/api/v1/messages",
        b'{"to": "07400 123456", "body": "Hi \\ud800"}',
        content_type="application/json",
    )

    assert response.status_code == 422
    assert _error(response)["code"] == "validation_error"


@pytest.mark.parametrize(
    "query",
    [
        {"status": "lost"},
        {"since": "0.5"},
        {"since": "2025-01-01T00:00"},
        {"colour": "red"},
    ],
)
def test_a_bad_filter_is_422(
    tenant_a: Tenant, api_for: MakeClient, query: dict[str, str]
) -> None:
    response = api_for(tenant_a.user).get("/messages", query)

    assert response.status_code == 422
    assert _error(response)["field"] == next(iter(query))


def test_an_offset_postgresql_cannot_store_is_read_in_utc(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)

    response = api.get("/messages", {"until": "6889-09-11T08:50:23-20:11"})

    assert response.status_code == 200


def test_a_nul_character_is_422_not_a_500(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    """PostgreSQL text cannot hold NUL; it is refused before any service."""
    api = api_for(tenant_a.user)

    body = api.client.post(
        "/api/v1/groups", b'{"name": "A\\u0000B"}', content_type="application/json"
    )
    query = api.get("/contacts", {"cursor": "1\x00"})

    assert body.status_code == query.status_code == 422
    assert _error(body)["code"] == _error(query)["code"] == "validation_error"
