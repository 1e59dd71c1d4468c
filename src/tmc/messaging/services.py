"""Business rules for sending a text: validation, cost, queueing, dispatch.

Also the organisation's saved message templates. Their changes go to the
activity log by id and changed field names: a body never reaches the log.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.accounts.pricing import (
    allowance_give_back,
    allowance_left,
    allowance_lock,
    allowance_take,
    charge_plan,
    price_list,
)
from tmc.accounts.services import InsufficientCredit, credits_add, credits_debit
from tmc.api import webhooks
from tmc.audit.services import event_record
from tmc.contacts.services import contact_find, opted_out
from tmc.gateways.base import GatewayError, Submission
from tmc.gateways.registry import gateway_named
from tmc.identity.models import User
from tmc.lib.lookalikes import lookalikes_offer
from tmc.lib.merge import (
    MergeSyntaxError,
    MissingMergeValues,
    ParsedBody,
    merge_parse,
    template_render,
)
from tmc.lib.phone import InvalidNumber, normalise_mobile
from tmc.lib.segments import SegmentCount, count_segments
from tmc.messaging.models import ERASED, Message, MessageTemplate, SenderId
from tmc.messaging.trial import NOT_VERIFIED, trial_notice, unverified_numbers
from tmc.routing.services import (
    gateway_failed,
    gateway_succeeded,
    gateways_down,
    route_gateways,
)
from tmc.routing.throughput import throughput_acquire

logger = logging.getLogger(__name__)

OPTED_OUT = (
    "This number has opted out of your texts (it replied STOP). It can be "
    "sent to again only after it texts START."
)
NOT_A_CONTACT = (
    "Merge fields take their values from the address book, and this number "
    "is not in it."
)
TEMPLATE_NAME_MAX = 80
EXPIRED_REASON = "Not sent within its validity period."

# Retry delays are a schedule, not a secret: an ordinary generator is right.
_jitter = random.Random()  # noqa: S311  # nosec B311


@dataclass(frozen=True)
class ComposedMessage:
    recipient: str
    sender: str
    body: str
    segments: SegmentCount
    lookalikes_replaced: int = 0
    # The package's price for the recipient's country (accounts.pricing).
    price_per_part: int = 1

    @property
    def credits(self) -> int:
        """The cost before any monthly allowance."""
        return self.segments.parts * self.price_per_part


def _resolve_sender(user: User, requested: str) -> SenderId | None:
    senders = SenderId.objects.for_user(user).filter(is_approved=True)
    if requested:
        return senders.filter(value=requested).first()
    return senders.filter(is_default=True).first() or senders.first()


def message_compose(
    *,
    user: User,
    recipient: str,
    body: str,
    sender: str = "",
    replace_lookalikes: bool = False,
    sender_from_pool: bool = False,
) -> ComposedMessage:
    """Check a text before it is sent; raise ValidationError keyed by field.

    With ``replace_lookalikes``, look-alike characters are replaced by their
    GSM-7 twins when that makes the whole text GSM-7 (what the compose page
    previews), and the text is left as written otherwise. Merge fields
    (``{first_name}``) are then filled from the recipient's contact in the
    address book; one without a value refuses the text, as does a stray
    brace (``{{`` writes a brace). With ``sender_from_pool`` the sender is
    left empty for the caller to fill with a virtual number (a Boomerang
    question). On the free trial the recipient must be a verified number,
    and the trial notice is appended to the text, and counted.
    """
    errors: dict[str, str] = {}
    organisation = user.organisation

    replaced = 0
    offer = lookalikes_offer(body) if replace_lookalikes else None
    if offer is not None:
        body, replaced = offer.text, offer.count
    parsed: ParsedBody | None = None
    try:
        parsed = merge_parse(body)
    except MergeSyntaxError as exc:
        errors["body"] = str(exc)

    normalised = ""
    try:
        normalised = normalise_mobile(recipient, user.organisation.default_region)
    except InvalidNumber as exc:
        errors["recipient"] = str(exc)
    else:
        if opted_out(organisation, normalised):
            errors["recipient"] = OPTED_OUT
        elif unverified_numbers(organisation, [normalised]):
            errors["recipient"] = NOT_VERIFIED

    if parsed is not None and normalised:
        try:
            body = _merged(user, parsed, normalised)
        except MissingMergeValues as exc:
            errors["body"] = str(exc)

    # A merge problem, found first, is the one worth showing.
    written = body
    body += trial_notice(organisation)
    segments = count_segments(body)
    if not written.strip():
        errors.setdefault("body", "Write the message.")
    elif segments.parts > settings.TMC_MAX_PARTS:
        errors.setdefault(
            "body",
            f"The message needs {segments.parts} parts; the most allowed is "
            f"{settings.TMC_MAX_PARTS}. Shorten it.",
        )

    sender_value = ""
    if not sender_from_pool:
        sender_id = _resolve_sender(user, sender.strip())
        if sender_id is None:
            errors["sender"] = (
                f"{sender!r} is not an approved sender for this account."
                if sender.strip()
                else "This account has no approved sender yet."
            )
        else:
            sender_value = sender_id.value

    if errors:
        raise ValidationError(errors)
    return ComposedMessage(
        recipient=normalised,
        sender=sender_value,
        body=body,
        segments=segments,
        lookalikes_replaced=replaced,
        price_per_part=price_list(organisation).per_part(normalised),
    )


def _merged(user: User, parsed: ParsedBody, e164: str) -> str:
    """The body with its merge fields filled from the recipient's contact.

    ``{{`` and ``}}`` become single braces even without fields. Raises
    MissingMergeValues, with advice, when a value is missing.
    """
    contact = contact_find(user, e164) if parsed.fields else None
    values = contact.merge_values() if contact is not None else {}
    try:
        return template_render(parsed, values, missing="refuse")
    except MissingMergeValues as exc:
        advice = (
            "Add it to the contact, or take the field out."
            if contact is not None
            else NOT_A_CONTACT
        )
        raise MissingMergeValues(exc.fields, advice=advice) from exc


def message_send(
    *,
    user: User,
    recipient: str,
    body: str,
    sender: str = "",
    replace_lookalikes: bool = False,
    request: HttpRequest | None = None,
) -> Message:
    """Validate, charge and queue one text; the worker sends it.

    Nothing is created and nothing is charged when any check fails.
    """
    composed = message_compose(
        user=user,
        recipient=recipient,
        body=body,
        sender=sender,
        replace_lookalikes=replace_lookalikes,
    )
    with transaction.atomic():
        message = message_create(
            user=user, composed=composed, request=request, quiet_hours=True
        )
    return message


def message_create(
    *,
    user: User,
    composed: ComposedMessage,
    request: HttpRequest | None = None,
    details: dict[str, object] | None = None,
    charge: bool = True,
    quiet_hours: bool = False,
) -> Message:
    """Store, charge and queue a composed text, in the caller's transaction.

    For services that create other rows with the message (a Boomerang
    ticket, say) and need them to commit or roll back together. ``details``
    join the activity-log event (ids and counts only). ``charge=False``
    sends at the platform's cost (a trial's verification code): the message
    is recorded with no credits, so nothing is debited or ever refunded.
    With ``quiet_hours`` a text created in the organisation's quiet hours is
    held until they end (``Message.hold_until``) instead of queued for a
    worker; its validity period counts from then.
    """
    assert transaction.get_connection().in_atomic_block
    now = timezone.now()
    credits, free_parts = _charge(user, composed, now) if charge else (0, 0)
    if credits or free_parts:
        _check_limits(user, credits + free_parts)
    hold_until = user.organisation.quiet_release(now) if quiet_hours else None
    message = Message(
        organisation=user.organisation,
        created_by=user,
        sender=composed.sender,
        encoding=composed.segments.encoding,
        parts=composed.segments.parts,
        credits=credits,
        free_parts=free_parts,
        hold_until=hold_until,
        expires_at=message_expiry(user.organisation, hold_until or now),
    )
    message.seal(recipient=composed.recipient, body=composed.body)
    message.save()
    allowance_take(user.organisation, free_parts, now)
    try:
        if credits:
            credits_debit(
                organisation=user.organisation,
                amount=credits,
                reason=f"Message {message.pk}",
            )
    except InsufficientCredit as exc:
        # The caller's atomic block, left by this exception, undoes the
        # message too.
        raise ValidationError({"body": str(exc)}) from exc
    # Ids and counts only: the body and the number stay out of the log.
    recorded: dict[str, object] = {
        "message": message.pk,
        "sender": message.sender,
        "parts": message.parts,
        "credits": message.credits,
        "encoding": message.encoding,
        **(details or {}),
    }
    if free_parts:
        recorded["free_parts"] = free_parts
    if composed.lookalikes_replaced:
        recorded["lookalikes_replaced"] = composed.lookalikes_replaced
    if hold_until is not None:
        recorded["held_until"] = hold_until
    event_record(
        action="message.sent",
        actor=user,
        target=message,
        details=recorded,
        request=request,
    )

    def queue() -> None:
        if hold_until is not None:
            logger.info("message held for quiet hours id=%s", message.pk)
            return
        logger.info(
            "message queued id=%s organisation_id=%s user_id=%s parts=%s",
            message.pk,
            message.organisation_id,
            user.pk,
            message.parts,
        )
        _enqueue_dispatch(message.pk)

    transaction.on_commit(queue)
    return message


def _charge(user: User, composed: ComposedMessage, now: datetime) -> tuple[int, int]:
    """(credits, free parts) of a text, its free parts from the allowance.

    With an allowance the organisation's row is locked here until commit,
    so two sends at once take turns at it.
    """
    prices = price_list(user.organisation)
    free = 0
    if prices.allowance:
        locked = allowance_lock(user.organisation)
        free = allowance_left(locked, prices, now)
    plan = charge_plan(prices, [composed.recipient], composed.segments.parts, free)
    return plan.total_credits, plan.total_free


def message_expiry(organisation: Organisation, start: datetime) -> datetime:
    """When a message that may go from ``start`` stops being worth sending.

    ``start`` is its acceptance, or the end of the quiet hours that hold it:
    the validity period counts from when it may first go.
    """
    return start + timedelta(hours=organisation.validity_hours)


def _check_limits(user: User, credits: int) -> None:
    """Refuse a send that would pass the user's daily or monthly limit.

    ``credits`` is the send's cost with each free part of the allowance
    counted as a credit: the allowance is the organisation's, and a user's
    limit holds whoever pays.
    """
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
                total=Sum(F("credits") + F("free_parts"))
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
    delivery of the task sees after another worker claimed it, or is still
    held for quiet hours.
    """
    # Claim with a conditional UPDATE: of two workers given the same task,
    # exactly one moves the row out of QUEUED and sends it.
    now = timezone.now()
    claimed = Message.objects.filter(
        message_released(now), pk=message_id, status=Message.Status.QUEUED
    ).update(status=Message.Status.SUBMITTING, submitting_since=now)
    if not claimed:
        logger.info("message not queued, skipped id=%s", message_id)
        return None

    return message_submit(message=Message.objects.get(pk=message_id))


def message_released(now: datetime) -> Q:
    """Messages no quiet hours hold back at ``now``: for every claim."""
    return Q(hold_until__isnull=True) | Q(hold_until__lte=now)


def message_submit(*, message: Message) -> Message.Status:
    """Hand a message this worker has claimed (SUBMITTING) to a gateway.

    Shared by the one-message and the campaign dispatchers, which differ only
    in how they claim; returns the message's new status. The gateways are
    those of the route for the recipient's number, tried in order: one that
    is down is skipped, one at its throughput limit is waited for a little
    and then passed over, and one that fails for now is marked down and the
    next is tried. A permanent refusal fails the message and refunds it;
    when every gateway failed for now, it waits to be retried.
    """
    assert message.status == Message.Status.SUBMITTING
    if message.recipient == ERASED:
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.FAILED,
            failure_reason="The organisation's data was erased.",
            completed_at=timezone.now(),
        )
        return Message.Status.FAILED
    if message.expires_at is not None and message.expires_at <= timezone.now():
        message_close(
            message_id=message.pk, status=Message.Status.EXPIRED, reason=EXPIRED_REASON
        )
        return Message.Status.EXPIRED

    submission = Submission(
        message_id=message.pk,
        sender=message.sender,
        recipient=message.recipient,
        body=message.body,
        encoding=count_segments(message.body).encoding,
        parts=message.parts,
    )
    names = route_gateways(number=message.recipient)
    down = gateways_down(names=names)
    reason = "Every gateway on the route is down."
    for name in names:
        if name in down:
            continue
        if not throughput_acquire(name=name):
            reason = "Every gateway on the route is busy."
            continue
        gateway = gateway_named(name)
        try:
            with transaction.atomic():
                result = gateway.submit(submission)
                claimed = Message.objects.filter(
                    pk=message.pk, status=Message.Status.SUBMITTING
                )
                if result.pending:
                    # The adapter's own connection records the outcome later.
                    taken = claimed.update(gateway=gateway.name, next_attempt_at=None)
                else:
                    taken = claimed.update(
                        status=Message.Status.SUBMITTED,
                        gateway=gateway.name,
                        provider_message_id=result.provider_message_id,
                        submitted_at=timezone.now(),
                        next_attempt_at=None,
                    )
        except GatewayError as exc:
            logger.warning(
                "gateway refused message id=%s gateway=%s permanent=%s",
                message.pk,
                name,
                exc.permanent,
            )
            if exc.permanent:
                Message.objects.filter(pk=message.pk).update(gateway=name)
                message_close(
                    message_id=message.pk,
                    status=Message.Status.FAILED,
                    reason=exc.reason,
                )
                return Message.Status.FAILED
            gateway_failed(name=name, reason=exc.reason)
            reason = exc.reason
            continue

        gateway_succeeded(name=name)
        if not taken:
            # Only the reconciler moves a claimed message, after
            # TMC_RECONCILE_AFTER_SECONDS; a submit that slow is reported.
            logger.error("message reconciled while submitting id=%s", message.pk)
        logger.info("message submitted id=%s gateway=%s", message.pk, name)
        return Message.Status.SUBMITTING if result.pending else Message.Status.SUBMITTED

    return _retry_later(message, reason)


def retry_delay(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed passes: doubling, with jitter.

    Between half and all of TMC_RETRY_BASE_SECONDS * 2**(attempts - 1): the
    jitter spreads out the retries of messages that failed together (a
    gateway outage) so they do not all return at once.
    """
    ceiling = settings.TMC_RETRY_BASE_SECONDS * 2 ** min(attempts - 1, 16)
    return timedelta(seconds=ceiling * _jitter.uniform(0.5, 1.0))


def _retry_later(message: Message, reason: str) -> Message.Status:
    attempts = message.attempts + 1
    if attempts >= settings.TMC_RETRY_MAX_ATTEMPTS:
        message_close(
            message_id=message.pk,
            status=Message.Status.FAILED,
            reason=f"Not sent after {attempts} attempts: {reason}",
        )
        return Message.Status.FAILED

    Message.objects.filter(pk=message.pk, status=Message.Status.SUBMITTING).update(
        status=Message.Status.RETRYING,
        attempts=attempts,
        next_attempt_at=timezone.now() + retry_delay(attempts),
        failure_reason=reason[:200],
        submitting_since=None,
    )
    logger.info("message to retry id=%s attempts=%s", message.pk, attempts)
    return Message.Status.RETRYING


def message_close(
    *,
    message_id: int,
    status: Message.Status,
    reason: str,
    from_statuses: Collection[Message.Status] = (Message.Status.SUBMITTING,),
) -> bool:
    """Fail or expire a message no gateway took, and refund its credits.

    Only from ``from_statuses``: by default SUBMITTING, the worker that
    claimed it; the sweeps close QUEUED and RETRYING messages, never one a
    worker holds. Returns False, refunding nothing, when the message is in
    none of them (another worker closed it, or a gateway took it meanwhile).
    """
    assert status in {Message.Status.FAILED, Message.Status.EXPIRED}
    with transaction.atomic():
        # The conditional UPDATE is the claim on the refund: of two workers
        # closing the same message at once (a permanent refusal and the
        # expiry sweep, say), exactly one moves it out of the unsent
        # statuses, and only that one refunds, in the same transaction.
        assert set(from_statuses) <= Message.UNSENT_STATUSES
        closed = Message.objects.filter(
            pk=message_id, status__in=list(from_statuses)
        ).update(
            status=status,
            failure_reason=reason[:200],
            completed_at=timezone.now(),
            next_attempt_at=None,
        )
        if not closed:
            return False
        message = Message.objects.select_related("organisation").get(pk=message_id)
        # A message sent free of charge (charge=False) has nothing to refund.
        if message.credits:
            credits_add(
                organisation=message.organisation,
                amount=message.credits,
                kind=CreditLedgerEntry.Kind.REFUND,
                reason=f"Refund for message {message.pk}",
            )
        # Free parts come back to this month's allowance; a past month's
        # allowance has lapsed.
        allowance_give_back(
            message.organisation, message.free_parts, message.created_at
        )
    logger.info(
        "message %s and refunded id=%s credits=%s", status, message.pk, message.credits
    )
    _webhook_status(message.pk)
    return True


def _webhook_status(message_id: int) -> None:
    # Robust: a webhook problem must never undo or fail the close.
    transaction.on_commit(
        lambda: webhooks.message_status_notify(message_id=message_id), robust=True
    )


# --- templates -----------------------------------------------------------------


def _template_checked(
    user: User, *, name: str, body: str, other_than: MessageTemplate | None
) -> str:
    """The name to store; raise ValidationError keyed by field.

    A body that needs more parts than a message may take, as written, could
    never be sent, so it is refused here rather than at every use. Merge
    fields make the sent text longer or shorter than that; the compose page
    counts again.
    """
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = "Name the template."
    elif len(name) > TEMPLATE_NAME_MAX:
        errors["name"] = f"The name is longer than {TEMPLATE_NAME_MAX} characters."
    else:
        taken = MessageTemplate.objects.for_user(user).filter(name__iexact=name)
        if other_than is not None:
            taken = taken.exclude(pk=other_than.pk)
        if taken.exists():
            errors["name"] = "There is a template with this name already."

    parts = count_segments(body).parts
    if not body.strip():
        errors["body"] = "Write the message."
    elif parts > settings.TMC_MAX_PARTS:
        errors["body"] = (
            f"As written the message needs {parts} parts; the most allowed is "
            f"{settings.TMC_MAX_PARTS}. Shorten it."
        )
    else:
        try:
            merge_parse(body)
        except MergeSyntaxError as exc:
            errors["body"] = str(exc)

    if errors:
        raise ValidationError(errors)
    return name


def _name_taken() -> ValidationError:
    # The same name saved twice at once: the unique constraint decides.
    return ValidationError({"name": "There is a template with this name already."})


def message_template_create(
    *, user: User, name: str, body: str, request: HttpRequest | None = None
) -> MessageTemplate:
    """Save a template for everyone in the user's organisation."""
    name = _template_checked(user, name=name, body=body, other_than=None)

    template = MessageTemplate(
        organisation=user.organisation, name=name, created_by=user
    )
    template.seal(body=body)
    try:
        with transaction.atomic():
            template.save()
            event_record(
                action="template.created",
                actor=user,
                target=template,
                details={"template": template.pk},
                request=request,
            )
    except IntegrityError as exc:
        raise _name_taken() from exc

    logger.info(
        "template created id=%s organisation_id=%s",
        template.pk,
        template.organisation_id,
    )
    return template


def message_template_update(
    *,
    user: User,
    template: MessageTemplate,
    name: str,
    body: str,
    request: HttpRequest | None = None,
) -> MessageTemplate:
    """Change a template; the log names what changed, never the body."""
    assert template.organisation_id == user.organisation_id
    name = _template_checked(user, name=name, body=body, other_than=template)

    changed = [
        field
        for field, before, after in (
            ("name", template.name, name),
            ("body", template.body, body),
        )
        if before != after
    ]
    if not changed:
        return template

    template.name = name
    template.seal(body=body)
    try:
        with transaction.atomic():
            template.save(update_fields=["name", "body_sealed", "updated_at"])
            event_record(
                action="template.updated",
                actor=user,
                target=template,
                details={"template": template.pk, "changed": changed},
                request=request,
            )
    except IntegrityError as exc:
        raise _name_taken() from exc
    return template


def message_template_delete(
    *, user: User, template: MessageTemplate, request: HttpRequest | None = None
) -> None:
    """Remove a template; messages sent with it are not touched."""
    assert template.organisation_id == user.organisation_id
    with transaction.atomic():
        event_record(
            action="template.deleted",
            actor=user,
            target=template,
            details={"template": template.pk},
            request=request,
        )
        template.delete()
