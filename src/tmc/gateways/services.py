"""What arrives from gateway providers: delivery reports and inbound texts.

Inbound texts are handled in ``tmc.gateways.inbound``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tmc.api import webhooks
from tmc.api.models import WebhookEndpoint
from tmc.gateways.base import DeliveryState

# Texts from handsets take the same path whatever the gateway.
from tmc.gateways.inbound import inbound_accept as inbound_accept
from tmc.gateways.inbound import inbound_receive as inbound_receive
from tmc.messaging.models import Message

logger = logging.getLogger(__name__)

_REPORTABLE = [Message.Status.SUBMITTING, Message.Status.SUBMITTED]
_REPORTED_STATUS = {
    DeliveryState.DELIVERED: Message.Status.DELIVERED,
    DeliveryState.FAILED: Message.Status.FAILED,
}


def reported_message(gateway: str, provider_message_id: str) -> QuerySet[Message]:
    """The message a provider's id names, found through its unique index.

    The index is partial (ids are unique only once set); repeating its
    condition lets SQLite use it, which cannot infer it from the equality and
    would otherwise scan every message for each report.
    """
    return Message.objects.filter(
        gateway=gateway, provider_message_id=provider_message_id
    ).exclude(provider_message_id="")


def delivery_report_receive(
    *,
    gateway: str,
    provider_message_id: str,
    state: DeliveryState,
    reason: str = "",
) -> Message | None:
    """Record a delivery report; return the message, or None if unknown.

    A report can overtake the submit response that carries the provider id
    (providers answer on separate connections), so a message still marked
    submitting accepts it. Reports for a message already final change nothing,
    which makes a repeated report harmless.
    """
    message = _report_apply(
        reported_message(gateway, provider_message_id), state=state, reason=reason
    )
    if message is None:
        logger.warning(
            "delivery report for unknown message gateway=%s provider_id=%s",
            gateway,
            provider_message_id,
        )
    return message


def message_report_receive(
    *, gateway: str, message_id: int, state: DeliveryState, reason: str = ""
) -> Message | None:
    """Record a message's outcome worked out by an adapter from its parts.

    For providers that give each part its own id (SMPP), where no single
    provider id names the message. The same rules as ``delivery_report_receive``
    apply: a submitting message accepts it, a final one ignores it.
    """
    messages = Message.objects.filter(gateway=gateway, pk=message_id)
    return _report_apply(messages, state=state, reason=reason)


def _report_apply(
    messages: QuerySet[Message], *, state: DeliveryState, reason: str
) -> Message | None:
    new_status = _REPORTED_STATUS[state]
    with transaction.atomic():
        updated = messages.filter(status__in=_REPORTABLE).update(
            status=new_status,
            completed_at=timezone.now(),
            failure_reason=reason[:200],
        )
        message = messages.first()
    if message is not None and updated:
        logger.info("message %s id=%s", new_status, message.pk)
        _webhook_status(message.pk)
    return message


@dataclass(frozen=True)
class DeliveryReport:
    provider_message_id: str
    state: DeliveryState
    reason: str = ""


def delivery_reports_receive(*, gateway: str, reports: Sequence[DeliveryReport]) -> int:
    """Record many delivery reports from one gateway; return how many applied.

    The rules of ``delivery_report_receive``, with one UPDATE per outcome
    (and reason) rather than one transaction per report.
    """
    # A message without a provider id yet is named by no report.
    applied = _outcomes_apply(
        gateway=gateway,
        column="provider_message_id",
        outcomes=[
            (r.provider_message_id, r.state, r.reason)
            for r in reports
            if r.provider_message_id
        ],
    )
    if applied < len(reports):
        logger.info(
            "delivery reports for unknown or final messages gateway=%s count=%s",
            gateway,
            len(reports) - applied,
        )
    return applied


@dataclass(frozen=True)
class MessageReport:
    message_id: int
    state: DeliveryState
    reason: str = ""


def message_reports_receive(*, gateway: str, reports: Sequence[MessageReport]) -> int:
    """Record many outcomes adapters worked out from parts; return how many applied.

    ``message_report_receive`` for many, in the caller's transaction or its
    own: one UPDATE per outcome (and reason), the same rules.
    """
    return _outcomes_apply(
        gateway=gateway,
        column="pk",
        outcomes=[(r.message_id, r.state, r.reason) for r in reports],
    )


def _outcomes_apply(
    *,
    gateway: str,
    column: str,
    outcomes: Sequence[tuple[str | int, DeliveryState, str]],
) -> int:
    """Apply (name, state, reason) outcomes; return how many messages changed.

    Each name is a value of the message's ``column``. One transaction, one
    UPDATE per state and reason, then the webhooks are told.
    """
    grouped: dict[tuple[DeliveryState, str], list[str | int]] = defaultdict(list)
    for name, state, reason in outcomes:
        grouped[state, reason[:200]].append(name)
    applied: list[tuple[int, int]] = []
    with transaction.atomic():
        for (state, reason), names in grouped.items():
            reported = Message.objects.filter(
                gateway=gateway, status__in=_REPORTABLE, **{f"{column}__in": names}
            )
            # Locked, so the ids read are those the UPDATE changes.
            rows = list(
                reported.select_for_update().values_list("pk", "organisation_id")
            )
            Message.objects.filter(pk__in=[pk for pk, _ in rows]).update(
                status=_REPORTED_STATUS[state],
                completed_at=timezone.now(),
                failure_reason=reason,
            )
            applied.extend(rows)
        message_statuses_notify(applied)
    return len(applied)


def message_statuses_notify(messages: Sequence[tuple[int, int]]) -> None:
    """Notify webhooks of (message id, organisation id) pairs now final.

    Only organisations with an endpoint are looked at message by message.
    """
    listening = set(
        WebhookEndpoint.objects.filter(
            organisation_id__in={organisation for _, organisation in messages}
        ).values_list("organisation_id", flat=True)
    )
    for message_id, organisation_id in messages:
        if organisation_id in listening:
            _webhook_status(message_id)


def _webhook_status(message_id: int) -> None:
    # Robust: a webhook problem must never fail the report that caused it.
    transaction.on_commit(
        lambda: webhooks.message_status_notify(message_id=message_id), robust=True
    )
