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
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from tmc.bulkinsert import rows_insert
from tmc.gateways.base import BatchOutcome, GatewayError, Submission, SubmitResult
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset

logger = logging.getLogger(__name__)

_DELIVERY_COLUMNS = (
    "provider_message_id", "gateway", "message_id", "handset_id", "sender",
    "body", "parts", "accepted_at", "reported_state",
)  # fmt: skip

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
        """Record what it takes in one go, as a provider's batch API would.

        One COPY on PostgreSQL (executemany on SQLite), below the ORM: at
        thousands of messages a second its per-object work would be most
        of the cost.
        """
        if self.name in settings.TMC_SIMULATOR_DOWN:
            raise GatewayError("simulated provider is down", permanent=False)

        handsets = _handsets(
            {s.recipient for s in submissions if s.recipient.startswith("+")}
        )
        accepted_at = connection.ops.adapt_datetimefield_value(timezone.now())
        outcomes: list[BatchOutcome] = []
        rows = []
        for submission in submissions:
            handset = handsets.get(submission.recipient)
            if handset is None:
                outcomes.append(
                    GatewayError("destination is not in E.164 form", permanent=True)
                )
            elif handset.outcome == SimulatedHandset.Outcome.REJECT:
                outcomes.append(GatewayError("destination barred", permanent=True))
            else:
                provider_id = f"sim-{uuid.uuid4().hex}"
                rows.append(
                    (
                        provider_id,
                        self.name,
                        submission.message_id,
                        handset.pk,
                        submission.sender,
                        submission.body,
                        submission.parts,
                        accepted_at,
                        "",
                    )
                )
                outcomes.append(SubmitResult(provider_id))
        rows_insert(SimulatedDelivery._meta.db_table, _DELIVERY_COLUMNS, rows)

        provider_ids = [row[0] for row in rows]
        delay = settings.TMC_SIMULATOR_REPORT_DELAY
        # After commit: the platform records the provider ids in the same
        # transaction, and a report must never arrive before its id exists.
        if provider_ids:
            transaction.on_commit(lambda: _schedule_reports(provider_ids, delay))
        logger.info(
            "simulator accepted count=%s refused=%s",
            len(rows),
            len(submissions) - len(rows),
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


class _Handset(NamedTuple):
    pk: int
    outcome: str


def _handsets(numbers: set[str]) -> dict[str, _Handset]:
    """The handsets with these numbers, created as needed."""

    def read(wanted: set[str]) -> dict[str, _Handset]:
        handsets = SimulatedHandset.objects.filter(number__in=wanted)
        return {
            number: _Handset(pk, outcome)
            for number, pk, outcome in handsets.values_list("number", "pk", "outcome")
        }

    found = read(numbers)
    missing = numbers - found.keys()
    if missing:
        quote = connection.ops.quote_name
        # One statement for the batch. Two batches creating one number at
        # once: the unique number keeps one row, and both then read it.
        # Names come from the model, values are parameters.
        insert = (
            f"INSERT INTO {quote(SimulatedHandset._meta.db_table)} "  # noqa: S608  # nosec B608
            f"({quote('number')}, {quote('outcome')}) VALUES "
            f"{', '.join(['(%s, %s)'] * len(missing))} "
            f"ON CONFLICT ({quote('number')}) DO NOTHING"
        )
        random = SimulatedHandset.Outcome.RANDOM.value
        with connection.cursor() as cursor:
            cursor.execute(
                insert, [value for number in missing for value in (number, random)]
            )
        found.update(read(missing))
    return found


def _schedule_reports(provider_ids: list[str], delay: float) -> None:
    from tmc.gateways.simulator.tasks import simulator_report_deliveries

    if delay > 0:
        simulator_report_deliveries.schedule(args=(provider_ids,), delay=delay)
    else:
        simulator_report_deliveries(provider_ids)
