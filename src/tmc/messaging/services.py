"""Business rules for sending a text: validation, cost, queueing, dispatch."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts.services import InsufficientCredit, credits_debit
from tmc.audit.services import event_record
from tmc.contacts.services import opted_out
from tmc.gateways.base import GatewayError, Submission
from tmc.gateways.registry import gateway_for_messages
from tmc.identity.models import User
from tmc.lib.phone import InvalidNumber, normalise_mobile
from tmc.lib.segments import SegmentCount, count_segments
from tmc.messaging.models import ERASED, Message, SenderId

logger = logging.getLogger(__name__)

OPTED_OUT = (
    "This number has opted out of your texts (it replied STOP). It can be "
    "sent to again only after it texts START."
)


@dataclass(frozen=True)
class ComposedMessage:
    recipient: str
    sender: str
    body: str
    segments: SegmentCount

    @property
    def credits(self) -> int:
        # One credit per part: what the provider charges us for.
        return self.segments.parts


def _resolve_sender(user: User, requested: str) -> SenderId | None:
    senders = SenderId.objects.for_user(user).filter(is_approved=True)
    if requested:
        return senders.filter(value=requested).first()
    return senders.filter(is_default=True).first() or senders.first()


def message_compose(
    *, user: User, recipient: str, body: str, sender: str = ""
) -> ComposedMessage:
    """Check a text before it is sent; raise ValidationError keyed by field."""
    errors: dict[str, str] = {}

    normalised = ""
    try:
        normalised = normalise_mobile(recipient, user.organisation.default_region)
    except InvalidNumber as exc:
        errors["recipient"] = str(exc)
    else:
        if opted_out(user.organisation, normalised):
            errors["recipient"] = OPTED_OUT

    segments = count_segments(body)
    if not body.strip():
        errors["body"] = "Write the message."
    elif segments.parts > settings.TMC_MAX_PARTS:
        errors["body"] = (
            f"The message needs {segments.parts} parts; the most allowed is "
            f"{settings.TMC_MAX_PARTS}. Shorten it."
        )

    sender_id = _resolve_sender(user, sender.strip())
    if sender_id is None:
        errors["sender"] = (
            f"{sender!r} is not an approved sender for this account."
            if sender.strip()
            else "This account has no approved sender yet."
        )

    if errors:
        raise ValidationError(errors)
    assert sender_id is not None
    return ComposedMessage(
        recipient=normalised, sender=sender_id.value, body=body, segments=segments
    )


def message_send(
    *,
    user: User,
    recipient: str,
    body: str,
    sender: str = "",
    request: HttpRequest | None = None,
) -> Message:
    """Validate, charge and queue one text; the worker sends it.

    Nothing is created and nothing is charged when any check fails.
    """
    composed = message_compose(user=user, recipient=recipient, body=body, sender=sender)

    with transaction.atomic():
        _check_limits(user, composed.credits)
        message = Message(
            organisation=user.organisation,
            created_by=user,
            sender=composed.sender,
            encoding=composed.segments.encoding,
            parts=composed.segments.parts,
            credits=composed.credits,
        )
        message.seal(recipient=composed.recipient, body=composed.body)
        message.save()
        try:
            credits_debit(
                organisation=user.organisation,
                amount=composed.credits,
                reason=f"Message {message.pk}",
            )
        except InsufficientCredit as exc:
            # Leaving the atomic block by exception undoes the message too.
            raise ValidationError({"body": str(exc)}) from exc
        # Ids and counts only: the body and the number stay out of the log.
        event_record(
            action="message.sent",
            actor=user,
            target=message,
            details={
                "message": message.pk,
                "sender": message.sender,
                "parts": message.parts,
                "credits": message.credits,
                "encoding": message.encoding,
            },
            request=request,
        )
        transaction.on_commit(lambda: _enqueue_dispatch(message.pk))

    logger.info(
        "message queued id=%s organisation_id=%s user_id=%s parts=%s",
        message.pk,
        message.organisation_id,
        user.pk,
        message.parts,
    )
    return message


def _check_limits(user: User, credits: int) -> None:
    """Refuse a send that would pass the user's daily or monthly limit."""
    if user.daily_message_limit is None and user.monthly_message_limit is None:
        return
    # Lock the sender's row: two sends by one user at once are counted one
    # after the other, so together they cannot slip past the limit.
    User.objects.select_for_update().filter(pk=user.pk).first()
    now = timezone.localtime()
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    periods = [
        ("daily", user.daily_message_limit, day_start, "today"),
        ("monthly", user.monthly_message_limit, day_start.replace(day=1), "this month"),
    ]
    for name, limit, start, when in periods:
        if limit is None:
            continue
        used = (
            Message.objects.filter(created_by=user, created_at__gte=start).aggregate(
                total=Sum("credits")
            )["total"]
            or 0
        )
        if used + credits > limit:
            raise ValidationError(
                {
                    "body": f"This needs {credits} credits and would pass your "
                    f"{name} limit of {limit} ({used} used {when})."
                }
            )


def _enqueue_dispatch(message_id: int) -> None:
    from tmc.messaging.tasks import message_dispatch_task

    message_dispatch_task(message_id)


def message_dispatch(*, message_id: int) -> Message.Status | None:
    """Hand a queued message to the gateway; return its new status.

    Returns None when the message was not queued, which is what a duplicate
    delivery of the task sees after another worker claimed it.
    """
    # Claim with a conditional UPDATE: of two workers given the same task,
    # exactly one moves the row out of QUEUED and sends it.
    claimed = Message.objects.filter(
        pk=message_id, status=Message.Status.QUEUED
    ).update(status=Message.Status.SUBMITTING)
    if not claimed:
        logger.info("message not queued, skipped id=%s", message_id)
        return None

    return message_submit(message=Message.objects.get(pk=message_id))


def message_submit(*, message: Message) -> Message.Status:
    """Hand a message this worker has claimed (SUBMITTING) to the gateway.

    Shared by the one-message and the campaign dispatchers, which differ only
    in how they claim; returns the message's new status.
    """
    assert message.status == Message.Status.SUBMITTING
    if message.recipient == ERASED:
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.FAILED,
            failure_reason="The organisation's data was erased.",
            completed_at=timezone.now(),
        )
        return Message.Status.FAILED
    gateway = gateway_for_messages()
    submission = Submission(
        message_id=message.pk,
        sender=message.sender,
        recipient=message.recipient,
        body=message.body,
        encoding=count_segments(message.body).encoding,
        parts=message.parts,
    )
    try:
        with transaction.atomic():
            result = gateway.submit(submission)
            Message.objects.filter(pk=message.pk).update(
                status=Message.Status.SUBMITTED,
                gateway=gateway.name,
                provider_message_id=result.provider_message_id,
                submitted_at=timezone.now(),
            )
    except GatewayError as exc:
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.FAILED,
            gateway=gateway.name,
            failure_reason=exc.reason[:200],
            completed_at=timezone.now(),
        )
        logger.warning(
            "gateway refused message id=%s gateway=%s permanent=%s",
            message.pk,
            gateway.name,
            exc.permanent,
        )
        return Message.Status.FAILED

    logger.info("message submitted id=%s gateway=%s", message.pk, gateway.name)
    return Message.Status.SUBMITTED
