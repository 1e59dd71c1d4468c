"""What arrives from gateway providers: delivery reports and inbound texts."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from tmc.api import webhooks
from tmc.boomerang.services import (
    answer_record,
    keyword_apply,
    pool_keyword_apply,
    reply_route,
)
from tmc.contacts.services import reply_keyword_apply
from tmc.gateways.base import DeliveryState
from tmc.lib.phone import mask_number
from tmc.messaging.models import InboundMessage, Message
from tmc.notifications.catalogue import Kind
from tmc.notifications.services import notify

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


@transaction.atomic
def inbound_receive(
    *, gateway: str, sender: str, recipient: str, body: str
) -> InboundMessage:
    """Store a text from a handset with the conversation it answers.

    Boomerang finds the conversation (the open ticket on the pair of
    numbers, else the organisation that last used the pair); a text that
    matches none is kept for the provider's unmatched inbox, never dropped.
    """
    route = reply_route(sender=sender, recipient=recipient)
    # STOP and START change the opt-out list before anything else, so no
    # send that follows can reach a number that has just opted out.
    if route.organisation is not None:
        keyword = reply_keyword_apply(
            organisation=route.organisation, sender=sender, body=body
        )
        if keyword is None and route.ticket is None:
            keyword_apply(
                organisation=route.organisation,
                recipient=recipient,
                sender=sender,
                body=body,
            )
    else:
        pool_keyword_apply(sender=sender, body=body)
    inbound = InboundMessage(
        organisation=route.organisation,
        gateway=gateway,
        recipient=recipient,
        in_reply_to=route.message,
    )
    inbound.seal(sender=sender, body=body)
    inbound.save()
    answer_record(route=route, inbound=inbound)
    if inbound.organisation_id is not None:
        inbound_id = inbound.pk
        transaction.on_commit(
            lambda: webhooks.reply_notify(inbound_id=inbound_id), robust=True
        )
    if route.message is not None:
        notify(
            kind=Kind.REPLY_RECEIVED,
            recipients=[route.message.created_by],
            context={"sender_masked": mask_number(sender)},
            link=reverse("messaging:detail", kwargs={"message_id": route.message.pk}),
        )
        # A text sent by email has its replies emailed back (after commit).
        from tmc.api.email_to_sms import email_reply_forward

        email_reply_forward(message=route.message, sender=sender, body=body)
    logger.info(
        "inbound received id=%s organisation_id=%s ticket_id=%s",
        inbound.pk,
        inbound.organisation_id,
        route.ticket.pk if route.ticket else None,
    )
    return inbound
