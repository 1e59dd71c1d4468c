"""The simulator behaves as a provider: ids, reports once, handsets reply."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.gateways.base import DeliveryState, GatewayError, Submission
from tmc.gateways.simulator.adapter import SimulatorGateway
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.gateways.simulator.services import handset_reply, simulator_report
from tmc.lib.segments import Encoding
from tmc.messaging.models import InboundMessage
from tmc.messaging.services import message_send
from tmc.testing import SENDER, CommitCapture, Tenant


def _submission(recipient: str = "+447400123456") -> Submission:
    return Submission(
        message_id=1,
        sender="Shop",
        recipient=recipient,
        body="Your order is ready",
        encoding=Encoding.GSM7,
        parts=1,
    )


def test_each_submission_gets_its_own_provider_id(db: None) -> None:
    gateway = SimulatorGateway()

    first = gateway.submit(_submission())
    second = gateway.submit(_submission())

    assert first.provider_message_id != second.provider_message_id
    handset = SimulatedHandset.objects.get(number="+447400123456")
    assert handset.deliveries.count() == 2


def test_lookup_finds_what_this_instance_took_by_the_platform_id(db: None) -> None:
    result = SimulatorGateway().submit(_submission())

    assert SimulatorGateway().lookup(1) == result.provider_message_id
    assert SimulatorGateway().lookup(2) is None
    assert SimulatorGateway(name="simulator-other").lookup(1) is None


def test_an_instance_marked_down_refuses_for_now(db: None, settings: Any) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-b"]

    with pytest.raises(GatewayError) as caught:
        SimulatorGateway(name="simulator-b").submit(_submission())

    assert not caught.value.permanent
    assert not SimulatedDelivery.objects.exists()
    SimulatorGateway(name="simulator-a").submit(_submission())


def test_a_report_is_made_once_only(db: None) -> None:
    result = SimulatorGateway().submit(_submission())

    assert simulator_report(result.provider_message_id) is DeliveryState.DELIVERED
    assert simulator_report(result.provider_message_id) is None
    delivery = SimulatedDelivery.objects.get()
    assert delivery.reported_state == "delivered"


def test_a_handset_keeps_what_it_received_and_its_reply_comes_back(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=True):
        message = message_send(
            user=tenant_a.user, recipient="07400 123456", body="Work Saturday?"
        )
    handset = SimulatedHandset.objects.get(number="+447400123456")
    assert [d.body for d in handset.deliveries.all()] == ["Work Saturday?"]

    reply = handset_reply(handset_number=handset.number, to=SENDER, body="YES")

    reply.refresh_from_db()
    assert reply.organisation == tenant_a.organisation
    assert reply.in_reply_to == message
    assert reply.body == "YES"


def test_a_reply_nobody_expects_is_kept_unattributed(db: None) -> None:
    handset_reply(handset_number="+447400999888", to="+447700000000", body="Hi?")

    kept = InboundMessage.objects.get()
    assert kept.organisation is None
    assert kept.in_reply_to is None
