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
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction

from tmc.gateways.base import BatchOutcome, GatewayError, Submission, SubmitResult
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset

logger = logging.getLogger(__name__)

NAME = "simulator"


class SimulatorGateway:
    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def submit(self, submission: Submission) -> SubmitResult:
        (outcome,) = self.submit_batch([submission])
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    def submit_batch(self, submissions: Sequence[Submission]) -> list[BatchOutcome]:
        """Record what it takes with one INSERT, as a provider's batch API would."""
        if self.name in settings.TMC_SIMULATOR_DOWN:
            raise GatewayError("simulated provider is down", permanent=False)

        handsets = _handsets(
            {s.recipient for s in submissions if s.recipient.startswith("+")}
        )
        outcomes: list[BatchOutcome] = []
        deliveries = []
        for submission in submissions:
            handset = handsets.get(submission.recipient)
            if handset is None:
                outcomes.append(
                    GatewayError("destination is not in E.164 form", permanent=True)
                )
            elif handset.outcome == SimulatedHandset.Outcome.REJECT:
                outcomes.append(GatewayError("destination barred", permanent=True))
            else:
                delivery = SimulatedDelivery(
                    provider_message_id=f"sim-{uuid.uuid4().hex}",
                    gateway=self.name,
                    message_id=submission.message_id,
                    handset=handset,
                    sender=submission.sender,
                    body=submission.body,
                    parts=submission.parts,
                )
                deliveries.append(delivery)
                outcomes.append(SubmitResult(delivery.provider_message_id))
        SimulatedDelivery.objects.bulk_create(deliveries)

        provider_ids = [delivery.provider_message_id for delivery in deliveries]
        delay = settings.TMC_SIMULATOR_REPORT_DELAY
        # After commit: the platform records the provider ids in the same
        # transaction, and a report must never arrive before its id exists.
        if provider_ids:
            transaction.on_commit(lambda: _schedule_reports(provider_ids, delay))
        logger.info(
            "simulator accepted count=%s refused=%s",
            len(deliveries),
            len(submissions) - len(deliveries),
        )
        return outcomes

    def lookup(self, message_id: int) -> str | None:
        if self.name in settings.TMC_SIMULATOR_DOWN:
            raise GatewayError("simulated provider is down", permanent=False)
        return (
            SimulatedDelivery.objects.filter(gateway=self.name, message_id=message_id)
            .values_list("provider_message_id", flat=True)
            .first()
        )


def _handsets(numbers: set[str]) -> dict[str, SimulatedHandset]:
    """The handsets with these numbers, created as needed."""
    found = {h.number: h for h in SimulatedHandset.objects.filter(number__in=numbers)}
    missing = numbers - found.keys()
    if missing:
        # Two batches creating one number at once: the unique number keeps
        # one row, and both then read it.
        SimulatedHandset.objects.bulk_create(
            [SimulatedHandset(number=number) for number in missing],
            ignore_conflicts=True,
        )
        found.update(
            (h.number, h) for h in SimulatedHandset.objects.filter(number__in=missing)
        )
    return found


def _schedule_reports(provider_ids: list[str], delay: float) -> None:
    from tmc.gateways.simulator.tasks import simulator_report_deliveries

    if delay > 0:
        simulator_report_deliveries.schedule(args=(provider_ids,), delay=delay)
    else:
        simulator_report_deliveries(provider_ids)
