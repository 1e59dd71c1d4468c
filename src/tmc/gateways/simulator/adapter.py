"""A gateway adapter that plays the part of an SMS provider.

It accepts submissions like a real provider, answers with a provider message
id, and reports delivery later through the task queue after
TMC_SIMULATOR_REPORT_DELAY seconds, with an outcome chosen by the handset's
setting or, by default, by TMC_SIMULATOR_FAILURE_RATE.

Each name ``simulator`` or ``simulator-<label>`` is its own simulated
provider, so routes can fail over between them; one named in
TMC_SIMULATOR_DOWN answers every submission with a temporary error.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import transaction

from tmc.gateways.base import GatewayError, Submission, SubmitResult
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset

logger = logging.getLogger(__name__)

NAME = "simulator"


class SimulatorGateway:
    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def submit(self, submission: Submission) -> SubmitResult:
        if self.name in settings.TMC_SIMULATOR_DOWN:
            raise GatewayError("simulated provider is down", permanent=False)
        if not submission.recipient.startswith("+"):
            raise GatewayError("destination is not in E.164 form", permanent=True)

        handset, _ = SimulatedHandset.objects.get_or_create(number=submission.recipient)
        if handset.outcome == SimulatedHandset.Outcome.REJECT:
            raise GatewayError("destination barred", permanent=True)
        delivery = SimulatedDelivery.objects.create(
            provider_message_id=f"sim-{uuid.uuid4().hex}",
            gateway=self.name,
            message_id=submission.message_id,
            handset=handset,
            sender=submission.sender,
            body=submission.body,
            parts=submission.parts,
        )
        delay = settings.TMC_SIMULATOR_REPORT_DELAY
        provider_id = delivery.provider_message_id

        # After commit: the platform records the provider id in the same
        # transaction, and a report must never arrive before that id exists.
        transaction.on_commit(lambda: _schedule_report(provider_id, delay))
        logger.info(
            "simulator accepted message_id=%s provider_id=%s",
            submission.message_id,
            provider_id,
        )
        return SubmitResult(provider_message_id=provider_id)

    def lookup(self, message_id: int) -> str | None:
        if self.name in settings.TMC_SIMULATOR_DOWN:
            raise GatewayError("simulated provider is down", permanent=False)
        return (
            SimulatedDelivery.objects.filter(gateway=self.name, message_id=message_id)
            .values_list("provider_message_id", flat=True)
            .first()
        )


def _schedule_report(provider_id: str, delay: float) -> None:
    from tmc.gateways.simulator.tasks import simulator_report_delivery

    if delay > 0:
        simulator_report_delivery.schedule(args=(provider_id,), delay=delay)
    else:
        simulator_report_delivery(provider_id)
