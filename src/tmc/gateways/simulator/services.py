"""What the simulator's handsets do: decide outcomes and reply."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tmc.gateways.base import DeliveryState
from tmc.gateways.services import (
    DeliveryReport,
    delivery_reports_receive,
    inbound_receive,
)
from tmc.gateways.simulator.adapter import NAME
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.messaging.models import InboundMessage

logger = logging.getLogger(__name__)

# Outcomes are a simulation, not a secret: an ordinary generator is right.
_outcomes = random.Random()  # noqa: S311  # nosec B311
UNREACHABLE = "Handset unreachable"


def _choose_state(outcome: str) -> DeliveryState | None:
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
    return simulator_reports([provider_message_id]).get(provider_message_id)


def simulator_reports(
    provider_message_ids: Sequence[str],
) -> dict[str, DeliveryState | None]:
    """Send the delivery reports for accepted submissions, each once.

    Returns each reported id's state (None: its handset stays silent); ids
    already reported, or unknown, are left out. One transaction for the
    batch: the simulator marks what it reports and the platform records it
    together, so a report is neither lost nor made twice.
    """
    with transaction.atomic():
        # Locked: of two report tasks for one id, one reports it.
        deliveries = list(
            SimulatedDelivery.objects.select_for_update(of=("self",))
            .filter(provider_message_id__in=provider_message_ids, reported_at=None)
            .order_by("pk")
            .values_list("pk", "provider_message_id", "gateway", "handset__outcome")
        )
        states = {
            provider_id: _choose_state(outcome)
            for _, provider_id, _, outcome in deliveries
        }
        now = timezone.now()
        for state in set(states.values()):
            SimulatedDelivery.objects.filter(
                pk__in=[
                    pk
                    for pk, provider_id, *_ in deliveries
                    if states[provider_id] is state
                ]
            ).update(reported_state=state.value if state else "silent", reported_at=now)

        by_gateway: dict[str, list[DeliveryReport]] = defaultdict(list)
        for _, provider_id, gateway, _ in deliveries:
            state = states[provider_id]
            if state is not None:
                reason = "" if state is DeliveryState.DELIVERED else UNREACHABLE
                by_gateway[gateway].append(DeliveryReport(provider_id, state, reason))
        for gateway, reports in by_gateway.items():
            delivery_reports_receive(gateway=gateway, reports=reports)
    return states


def handset_reply(*, handset_number: str, to: str, body: str) -> InboundMessage:
    """Make a virtual handset text ``to`` (the number it replies to)."""
    handset, _ = SimulatedHandset.objects.get_or_create(number=handset_number)
    logger.info("simulated handset %s replies", handset.pk)
    return inbound_receive(gateway=NAME, sender=handset.number, recipient=to, body=body)
