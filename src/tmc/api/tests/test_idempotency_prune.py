"""Idempotency records are kept for TMC_API_IDEMPOTENCY_HOURS, then pruned."""

from __future__ import annotations

from datetime import timedelta

from django.test import override_settings
from django.utils import timezone

from tmc.api.idempotency import idempotency_records_prune
from tmc.api.models import IdempotencyRecord
from tmc.api.tasks import idempotency_records_prune_task
from tmc.api.tests.conftest import MakeClient
from tmc.messaging.models import Message
from tmc.testing import Tenant

SEND = {"to": "07400 123456", "body": "Hello"}


def test_a_record_younger_than_a_day_still_replays(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    first = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="order-1")

    pruned = idempotency_records_prune(now=timezone.now() + timedelta(hours=23))
    again = api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="order-1")

    assert pruned == 0
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Message.objects.count() == 1


def test_after_a_day_the_record_is_gone_and_the_key_is_new(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="order-1")

    pruned = idempotency_records_prune(now=timezone.now() + timedelta(hours=25))
    reused = api.post(
        "/messages", {**SEND, "body": "Other"}, HTTP_IDEMPOTENCY_KEY="order-1"
    )

    assert pruned == 1
    assert reused.status_code == 201
    assert not reused.has_header("Idempotent-Replayed")
    assert Message.objects.count() == 2


@override_settings(TMC_API_IDEMPOTENCY_HOURS=2)
def test_the_periodic_task_keeps_records_for_the_configured_hours(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)
    api.post("/messages", SEND, HTTP_IDEMPOTENCY_KEY="old")
    api.post("/messages", {**SEND, "body": "New"}, HTTP_IDEMPOTENCY_KEY="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=2, minutes=1)
    )

    idempotency_records_prune_task.call_local()

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
