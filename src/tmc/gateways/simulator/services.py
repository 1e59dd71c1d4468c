"""What the simulator's handsets do: decide outcomes and reply."""

from __future__ import annotations

import logging
import random

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tmc.gateways.base import DeliveryState
from tmc.gateways.services import delivery_report_receive, inbound_receive
from tmc.gateways.simulator.adapter import NAME
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.messaging.models import InboundMessage

logger = logging.getLogger(__name__)

# Outcomes are a simulation, not a secret: an ordinary generator is right.
_outcomes = random.Random()  # noqa: S311  # nosec B311


def _choose_state(handset: SimulatedHandset) -> DeliveryState | None:
    outcome = handset.outcome
    if outcome == SimulatedHandset.Outcome.SILENT:
        return None
    if outcome == SimulatedHandset.Outcome.FAIL:
        return DeliveryState.FAILED
    if outcome == SimulatedHandset.Outcome.DELIVER:
        return DeliveryState.DELIVERED
    if _outcomes.random() < settings.TMC_SIMULATOR_FAILURE_RATE:
        return DeliveryState.FAILED
    return DeliveryState.DELIVERED


def simulator_report(provider_message_id: str) -> DeliveryState | None:
    """Send the delivery report for one accepted submission, once."""
    with transaction.atomic():
        delivery = (
            SimulatedDelivery.objects.select_for_update()
            .select_related("handset")
            .filter(provider_message_id=provider_message_id)
            .first()
        )
        if delivery is None or delivery.reported_at is not None:
            return None
        state = _choose_state(delivery.handset)
        delivery.reported_state = state.value if state else "silent"
        delivery.reported_at = timezone.now()
        delivery.save(update_fields=["reported_state", "reported_at"])
    if state is None:
        return None

    reason = "" if state is DeliveryState.DELIVERED else "Handset unreachable"
    delivery_report_receive(
        gateway=delivery.gateway,
        provider_message_id=provider_message_id,
        state=state,
        reason=reason,
    )
    return state


def handset_reply(*, handset_number: str, to: str, body: str) -> InboundMessage:
    """Make a virtual handset text ``to`` (the number it replies to)."""
    handset, _ = SimulatedHandset.objects.get_or_create(number=handset_number)
    logger.info("simulated handset %s replies", handset.pk)
    return inbound_receive(gateway=NAME, sender=handset.number, recipient=to, body=body)
