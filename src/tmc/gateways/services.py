"""What arrives from gateway providers: delivery reports and inbound texts.

Inbound texts are handled in ``tmc.gateways.inbound``.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tmc.api import webhooks
from tmc.gateways.base import DeliveryState

# Texts from handsets take the same path whatever the gateway.
from tmc.gateways.inbound import inbound_accept as inbound_accept
from tmc.gateways.inbound import inbound_receive as inbound_receive
from tmc.messaging.models import Message

logger = logging.getLogger(__name__)

_REPORTABLE = [Message.Status.SUBMITTING, Message.Status.SUBMITTED]


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
    new_status = (
        Message.Status.DELIVERED
        if state is DeliveryState.DELIVERED
        else Message.Status.FAILED
    )
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


def _webhook_status(message_id: int) -> None:
    # Robust: a webhook problem must never fail the report that caused it.
    transaction.on_commit(
        lambda: webhooks.message_status_notify(message_id=message_id), robust=True
    )
