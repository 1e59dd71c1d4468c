"""Delivery reports: applied once, in order, and never lost to a race."""

from __future__ import annotations

import pytest
from django.db import connection

from tmc.gateways.base import DeliveryState
from tmc.gateways.services import delivery_report_receive, reported_message
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import Tenant


def _submitted(tenant: Tenant, provider_id: str) -> Message:
    message = message_send(user=tenant.user, recipient="07400 123456", body="Hi")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTED,
        gateway="simulator",
        provider_message_id=provider_id,
    )
    return message


def test_a_final_state_is_not_overwritten_by_a_later_report(
    tenant_a: Tenant,
) -> None:
    message = _submitted(tenant_a, "p-1")

    delivery_report_receive(
        gateway="simulator", provider_message_id="p-1", state=DeliveryState.DELIVERED
    )
    delivery_report_receive(
        gateway="simulator",
        provider_message_id="p-1",
        state=DeliveryState.FAILED,
        reason="late duplicate",
    )

    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
    assert message.failure_reason == ""


def test_a_report_that_overtakes_the_submit_response_still_applies(
    tenant_a: Tenant,
) -> None:
    message = _submitted(tenant_a, "p-2")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SUBMITTING)

    delivery_report_receive(
        gateway="simulator", provider_message_id="p-2", state=DeliveryState.DELIVERED
    )

    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_a_report_for_another_gateways_id_changes_nothing(tenant_a: Tenant) -> None:
    message = _submitted(tenant_a, "p-3")

    found = delivery_report_receive(
        gateway="smpp-carrier", provider_message_id="p-3", state=DeliveryState.FAILED
    )

    assert found is None
    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED


def test_a_report_finds_its_message_through_the_provider_id_index(
    tenant_a: Tenant,
) -> None:
    """Without the index every report would scan all of the messages."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL infers the partial index's condition itself")

    plan = reported_message("simulator", "p-1").explain()

    assert "message_provider_id_unique_per_gateway" in plan
