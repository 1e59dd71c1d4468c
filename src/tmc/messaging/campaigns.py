"""Sending one text to many recipients: preview, acceptance, batch dispatch.

1. ``campaign_preview`` gathers the recipients (typed numbers, contacts,
   groups), normalises them to E.164, removes invalid numbers, duplicates and
   opted-out numbers, and prices the result. It creates nothing. The page
   shows it before sending; the API will answer with it.
2. ``campaign_send`` runs the same checks, then in one transaction creates
   the campaign and one message per recipient, reserves the credits with one
   ledger debit, and records one activity event. Dispatchers start after
   commit.
3. ``campaign_dispatch_batch`` (the ``messages_dispatch_batch`` task) claims
   a batch of a campaign's queued messages and submits them together
   (``batches.messages_submit_batch``). Several workers share one campaign.

Messages are written below the ORM (``tmc.bulkinsert``): at 100,000 rows the
ORM's per-object work would cost more than the encryption.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts import encryption
from tmc.accounts.pricing import (
    Charge,
    PriceList,
    allowance_left,
    allowance_lock,
    allowance_take,
    charge_plan,
    price_list,
)
from tmc.accounts.services import InsufficientCredit, credits_debit
from tmc.audit.services import event_record
from tmc.bulkinsert import rows_insert
from tmc.contacts.models import ERASED as CONTACT_ERASED
from tmc.contacts.models import Contact, Group, OptOut
from tmc.contacts.services import opted_out_indexes
from tmc.identity.models import Permission, User
from tmc.lib.phone import InvalidNumber, normalise_mobile
from tmc.lib.segments import SegmentCount, count_segments
from tmc.messaging.batches import messages_submit_batch
from tmc.messaging.models import Campaign, Message
from tmc.messaging.services import (
    _check_limits,
    _resolve_sender,
    message_expiry,
)
from tmc.messaging.trial import NOT_VERIFIED_REASON, trial_notice, unverified_numbers

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 100_000
DISPATCH_BATCH = 500
# Dispatch tasks started per campaign; each re-enqueues itself while it
# finds work, so this is how many workers can share one campaign at most.
DISPATCHERS = 2
# Up to this many numbers, opt-outs are looked up with an IN list; beyond
# it the organisation's whole opt-out list is read instead (one query either
# way), which keeps clear of SQLite's limit on query parameters.
OPT_OUT_IN_LIST = 5000


class Removal(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    OPTED_OUT = "opted_out"
    NOT_VERIFIED = "not_verified"


@dataclass(frozen=True)
class RemovedNumber:
    """A number left out of a campaign, and why.

    ``line`` is the line of the typed list it came from, or None for the
    address book. An invalid number is reported by line and reason only,
    never by its value; the others carry the E.164 number, for display
    through ``number_shown``.
    """

    reason: Removal
    line: int | None
    why: str = ""
    number: str = ""


@dataclass(frozen=True)
class CampaignPreview:
    recipients: tuple[str, ...]
    removed: tuple[RemovedNumber, ...]
    sender: str
    body: str
    segments: SegmentCount
    balance: int
    # Set when sent now would fall in the organisation's quiet hours: the
    # campaign is then held until this instant.
    hold_until: datetime | None = None
    quiet_hours: str = ""
    # Each message's credits and free parts (accounts.pricing), priced by
    # its destination, the package's allowance used first.
    charge: Charge = field(default_factory=lambda: Charge(credits=(), free_parts=()))
    prices: PriceList = field(default_factory=PriceList)

    @property
    def recipient_count(self) -> int:
        return len(self.recipients)

    @property
    def credits(self) -> int:
        return self.charge.total_credits

    @property
    def free_parts(self) -> int:
        return self.charge.total_free

    @property
    def balance_after(self) -> int:
        return self.balance - self.credits

    def removed_for(self, reason: Removal) -> tuple[RemovedNumber, ...]:
        return tuple(r for r in self.removed if r.reason == reason)

    @property
    def invalid(self) -> tuple[RemovedNumber, ...]:
        return self.removed_for(Removal.INVALID)

    @property
    def duplicates(self) -> tuple[RemovedNumber, ...]:
        return self.removed_for(Removal.DUPLICATE)

    @property
    def opted_out(self) -> tuple[RemovedNumber, ...]:
        return self.removed_for(Removal.OPTED_OUT)

    @property
    def not_verified(self) -> tuple[RemovedNumber, ...]:
        return self.removed_for(Removal.NOT_VERIFIED)


@dataclass(frozen=True)
class CampaignProgress:
    queued: int
    submitted: int
    delivered: int
    failed: int
    cancelled: int = 0

    @property
    def total(self) -> int:
        return (
            self.queued + self.submitted + self.delivered + self.failed + self.cancelled
        )

    @property
    def percent(self) -> int:
        """How much of the campaign has left the queue for the gateway."""
        if not self.total:
            return 100
        return (self.total - self.queued) * 100 // self.total


# --- preview -------------------------------------------------------------------


def _typed_numbers(text: str) -> Iterable[tuple[int, str]]:
    """(line, entry) for each number typed, one a line or comma separated."""
    for line, content in enumerate(text.splitlines(), start=1):
        for entry in content.split(","):
            if entry.strip():
                yield line, entry


def _address_book(
    user: User, contact_ids: Sequence[int], group_ids: Sequence[int]
) -> tuple[list[str], dict[str, str]]:
    """The numbers of the chosen contacts and groups' members, and errors."""
    errors: dict[str, str] = {}
    wanted_groups = set(group_ids)
    if wanted_groups:
        found = Group.objects.for_user(user).filter(pk__in=wanted_groups).count()
        if found != len(wanted_groups):
            errors["groups"] = "Choose groups of this organisation."
    wanted_contacts = set(contact_ids)
    if wanted_contacts:
        found = Contact.objects.for_user(user).filter(pk__in=wanted_contacts).count()
        if found != len(wanted_contacts):
            errors["contacts"] = "Choose contacts of this organisation."
    if errors or not (wanted_groups or wanted_contacts):
        return [], errors

    contacts = (
        Contact.objects.for_user(user)
        .filter(Q(pk__in=wanted_contacts) | Q(groups__in=wanted_groups))
        .distinct()
        .order_by("pk")
        .only("pk", "organisation_id", "uid", "number_sealed")
    )
    return [c.number for c in contacts], errors


def _recipients(
    user: User, typed: str, book: list[str]
) -> tuple[dict[str, int | None], list[RemovedNumber]]:
    """The distinct E.164 numbers, each with the line it was first seen on."""
    region = user.organisation.default_region
    kept: dict[str, int | None] = {}
    removed: list[RemovedNumber] = []
    known: dict[str, str | InvalidNumber] = {}

    entries: list[tuple[int | None, str]] = [*_typed_numbers(typed)]
    entries.extend((None, number) for number in book if number != CONTACT_ERASED)
    for line, raw in entries:
        number = known.get(raw)
        if number is None:
            try:
                number = normalise_mobile(raw, region)
            except InvalidNumber as exc:
                number = exc
            known[raw] = number
        if isinstance(number, InvalidNumber):
            removed.append(RemovedNumber(Removal.INVALID, line, why=number.reason))
        elif number in kept:
            removed.append(RemovedNumber(Removal.DUPLICATE, line, number=number))
        else:
            kept[number] = line
    return kept, removed


def _without_opt_outs(
    user: User, numbers: dict[str, int | None]
) -> tuple[list[str], list[RemovedNumber]]:
    """Remove opted-out numbers with one query, by blind index."""
    owner = user.organisation_id
    index = encryption.bulk_indexer(owner).index
    indexes = {number: index(number) for number in numbers}
    if len(indexes) <= OPT_OUT_IN_LIST:
        stopped = opted_out_indexes(user.organisation, indexes.values())
    else:
        stopped = set(
            OptOut.objects.for_organisation(user.organisation).values_list(
                "number_index", flat=True
            )
        )
    kept = [n for n in numbers if indexes[n] not in stopped]
    removed = [
        RemovedNumber(Removal.OPTED_OUT, line, number=n)
        for n, line in numbers.items()
        if indexes[n] in stopped
    ]
    return kept, removed


def _without_unverified(
    user: User, numbers: dict[str, int | None], kept: list[str]
) -> tuple[list[str], list[RemovedNumber]]:
    """On the free trial, remove the numbers the organisation has not verified."""
    unverified = unverified_numbers(user.organisation, kept)
    removed = [
        RemovedNumber(
            Removal.NOT_VERIFIED, numbers[n], why=NOT_VERIFIED_REASON, number=n
        )
        for n in kept
        if n in unverified
    ]
    return [n for n in kept if n not in unverified], removed


def _body_check(body: str, segments: SegmentCount) -> str | None:
    if not body.strip():
        return "Write the message."
    if segments.parts > settings.TMC_MAX_PARTS:
        return (
            f"The message needs {segments.parts} parts; the most allowed is "
            f"{settings.TMC_MAX_PARTS}. Shorten it."
        )
    return None


def campaign_preview(
    *,
    user: User,
    numbers_text: str,
    contact_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
    body: str,
    sender: str = "",
) -> CampaignPreview:
    """Check a campaign before it is sent: who gets it, what it costs.

    Raises PermissionDenied without SEND_BULK, and ValidationError keyed by
    field for no recipients, a bad body or sender, or a cost over the
    balance or the user's limits. Creates nothing. On the free trial,
    numbers not verified are removed ("not verified (trial)") and the trial
    notice is appended to the body, and counted.
    """
    if not user.has_permission(Permission.SEND_BULK):
        raise PermissionDenied("Your permissions do not include sending to many.")

    organisation = user.organisation
    organisation.refresh_from_db(
        fields=[
            "credit_balance",
            "time_zone",
            "quiet_start",
            "quiet_end",
            "is_trial",
            "message_validity_hours",
            "package",
            "allowance_month",
            "allowance_used",
        ]
    )
    book, errors = _address_book(user, contact_ids, group_ids)
    distinct, removed = _recipients(user, numbers_text, book)
    kept, stopped = _without_opt_outs(user, distinct)
    removed.extend(stopped)
    kept, unverified = _without_unverified(user, distinct, kept)
    removed.extend(unverified)

    if not kept:
        errors.setdefault(
            "numbers",
            "No one to send to: every number was removed (see below)."
            if removed
            else "Enter at least one number, or choose a group.",
        )
    elif len(kept) > MAX_RECIPIENTS:
        errors["numbers"] = (
            f"{len(kept):,} recipients; the most in one campaign is "
            f"{MAX_RECIPIENTS:,}. Split the list."
        )
    problem = _body_check(body, count_segments(body))
    body += trial_notice(organisation)
    segments = count_segments(body)
    problem = problem or _body_check(body, segments)
    if problem:
        errors["body"] = problem
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

    quiet = organisation.quiet_hours
    prices = price_list(organisation)
    preview = CampaignPreview(
        recipients=tuple(kept),
        removed=tuple(removed),
        sender=sender_id.value,
        body=body,
        segments=segments,
        balance=organisation.credit_balance,
        hold_until=organisation.quiet_release(timezone.now()),
        quiet_hours=quiet.describe() if quiet else "",
        charge=charge_plan(
            prices, kept, segments.parts, allowance_left(organisation, prices)
        ),
        prices=prices,
    )
    if preview.credits > preview.balance:
        short = InsufficientCredit(needed=preview.credits, available=preview.balance)
        raise ValidationError({"body": str(short)}) from short
    with transaction.atomic():
        _check_limits(user, preview.credits + preview.free_parts)
    return preview


# --- acceptance ----------------------------------------------------------------

_MESSAGE_COLUMNS = (
    "organisation_id", "created_by_id", "campaign_id", "uid", "sender",
    "recipient_sealed", "recipient_index", "recipient_route", "body_sealed",
    "encoding", "parts", "status", "gateway", "provider_message_id",
    "failure_reason", "created_at", "attempts", "expires_at",
    # From the Charge, joined at insert time: see _messages_insert.
    "credits", "free_parts",
)  # fmt: skip


def _message_rows(
    user: User, preview: CampaignPreview, created_at: Any, expires_at: Any
) -> list[tuple[Any, ...]]:
    """Each message's row without its campaign id, sealed like ``Message.seal``.

    Done before the transaction opens: encryption is most of the work, and
    the transaction then holds its locks only for the inserts.
    """
    owner = user.organisation_id
    native_uuid = connection.features.has_native_uuid_field
    parts = preview.segments.parts
    encoding = str(preview.segments.encoding)
    queued = str(Message.Status.QUEUED)
    sealer = encryption.BulkSealer(owner)
    index = encryption.bulk_indexer(owner).index
    route = encryption.bulk_indexer(None).index
    recipient_context = encryption.field_context(Message.TABLE, "recipient", "")
    body_context = encryption.field_context(Message.TABLE, "body", "")
    rows = []
    for number in preview.recipients:
        uid = uuid.uuid4()
        uid_text = str(uid)
        rows.append(
            (
                owner,
                user.pk,
                uid if native_uuid else uid.hex,
                preview.sender,
                sealer.encrypt(number, context=recipient_context + uid_text),
                index(number),
                route(number),
                sealer.encrypt(preview.body, context=body_context + uid_text),
                encoding,
                parts,
                queued,
                "",
                "",
                "",
                created_at,
                0,
                expires_at,
            )
        )
    return rows


def _messages_insert(
    campaign: Campaign, rows: list[tuple[Any, ...]], charge: Charge
) -> None:
    rows_insert(
        Message._meta.db_table,
        _MESSAGE_COLUMNS,
        (
            (owner, by, campaign.pk, *rest, credits, free)
            for (owner, by, *rest), credits, free in zip(
                rows, charge.credits, charge.free_parts, strict=True
            )
        ),
    )


def campaign_send(
    *,
    user: User,
    numbers_text: str,
    contact_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
    body: str,
    sender: str = "",
    request: HttpRequest | None = None,
) -> Campaign:
    """Check, charge and queue a campaign; the dispatchers send it.

    Nothing is created and nothing is charged when any check fails.
    """
    preview = campaign_preview(
        user=user,
        numbers_text=numbers_text,
        contact_ids=contact_ids,
        group_ids=group_ids,
        body=body,
        sender=sender,
    )
    now = timezone.now()
    created_at = Message._meta.get_field("created_at").get_db_prep_value(
        now, connection, prepared=False
    )
    expires_at = Message._meta.get_field("expires_at").get_db_prep_value(
        message_expiry(user.organisation, preview.hold_until or now),
        connection,
        prepared=False,
    )
    rows = _message_rows(user, preview, created_at, expires_at)

    with transaction.atomic():
        charge = preview.charge
        if preview.prices.allowance:
            # Read the allowance again under the organisation's row lock, held
            # from here to commit: campaigns of an organisation with an
            # allowance take turns, and none uses a free part twice.
            locked = allowance_lock(user.organisation)
            charge = charge_plan(
                preview.prices,
                preview.recipients,
                preview.segments.parts,
                allowance_left(locked, preview.prices, now),
            )
        _check_limits(user, charge.total_credits + charge.total_free)
        campaign = Campaign(
            organisation=user.organisation,
            created_by=user,
            sender=preview.sender,
            encoding=preview.segments.encoding,
            parts=preview.segments.parts,
            recipient_count=preview.recipient_count,
            invalid_count=len(preview.invalid),
            duplicate_count=len(preview.duplicates),
            opted_out_count=len(preview.opted_out),
            credits_reserved=charge.total_credits,
            free_parts=charge.total_free,
            hold_until=preview.hold_until,
        )
        campaign.seal(body=preview.body)
        campaign.save()
        _messages_insert(campaign, rows, charge)
        allowance_take(user.organisation, charge.total_free, now)
        # Reserved last, so the organisation's row is locked only from here
        # to commit. The debit is a conditional UPDATE: a second campaign
        # racing for the same credits waits on the row lock, then re-checks
        # the balance the first one left, and is refused rather than
        # overdrawing; its rows roll back with it.
        try:
            if charge.total_credits:
                credits_debit(
                    organisation=user.organisation,
                    amount=charge.total_credits,
                    reason=f"Campaign {campaign.pk}",
                )
        except InsufficientCredit as exc:
            raise ValidationError({"body": str(exc)}) from exc
        # Ids and counts only: the body and the numbers stay out of the log.
        event_record(
            action="campaign.sent",
            actor=user,
            target=campaign,
            details={
                "campaign": campaign.pk,
                "recipients": campaign.recipient_count,
                "invalid": campaign.invalid_count,
                "duplicates": campaign.duplicate_count,
                "opted_out": campaign.opted_out_count,
                "not_verified": len(preview.not_verified),
                "sender": campaign.sender,
                "parts": campaign.parts,
                "credits": campaign.credits_reserved,
                "free_parts": campaign.free_parts,
                "encoding": campaign.encoding,
            },
            request=request,
        )
        dispatchers = min(DISPATCHERS, -(-campaign.recipient_count // DISPATCH_BATCH))
        if campaign.hold_until is None:
            transaction.on_commit(lambda: _enqueue(campaign.pk, dispatchers))
        # Held: scheduling.campaigns_release_held starts them when it ends.

    logger.info(
        "campaign queued id=%s organisation_id=%s user_id=%s recipients=%s credits=%s",
        campaign.pk,
        campaign.organisation_id,
        user.pk,
        campaign.recipient_count,
        campaign.credits_reserved,
    )
    return campaign


def _enqueue(campaign_id: int, dispatchers: int) -> None:
    from tmc.messaging.tasks import messages_dispatch_batch

    for _ in range(dispatchers):
        messages_dispatch_batch(campaign_id)


# --- dispatch ------------------------------------------------------------------


def _messages_claim(campaign_id: int, size: int) -> list[int]:
    """Move up to ``size`` of a campaign's queued messages to SUBMITTING.

    Returns the ids claimed; no other dispatcher can claim any of them.
    """
    queued = Message.objects.filter(
        campaign_id=campaign_id, status=Message.Status.QUEUED
    ).order_by("pk")
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # Two dispatchers on one campaign: SKIP LOCKED passes over the
            # rows another is claiming at this moment instead of waiting
            # for them, so each takes a disjoint batch and neither stalls.
            chosen = queued.select_for_update(skip_locked=True)
        else:
            # SQLite: transactions begin IMMEDIATE (see settings), so this
            # one holds the write lock from the SELECT to the UPDATE and no
            # other dispatcher can claim in between.
            chosen = queued
        ids = list(chosen.values_list("pk", flat=True)[:size])
        if ids:
            claimed = Message.objects.filter(
                pk__in=ids, status=Message.Status.QUEUED
            ).update(status=Message.Status.SUBMITTING, submitting_since=timezone.now())
            assert claimed == len(ids), "a locked row changed under its claim"
    return ids


def campaign_dispatch_batch(*, campaign_id: int, size: int = DISPATCH_BATCH) -> int:
    """Claim and submit a batch of a campaign's messages; return how many.

    A return of ``size`` means more may be queued. The campaign is marked
    done once none of its messages is queued or being submitted.
    """
    if Campaign.objects.filter(
        Q(status=Campaign.Status.CANCELLED) | Q(hold_until__gt=timezone.now()),
        pk=campaign_id,
    ).exists():
        return 0
    ids = _messages_claim(campaign_id, size)
    if ids:
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.QUEUED).update(
            status=Campaign.Status.SENDING
        )
    messages_submit_batch(
        messages=list(Message.objects.filter(pk__in=ids).order_by("pk"))
    )
    if len(ids) < size:
        campaign_finish(campaign_id=campaign_id)
    logger.info("campaign batch id=%s claimed=%s", campaign_id, len(ids))
    return len(ids)


def campaign_finish(*, campaign_id: int) -> None:
    """Mark the campaign done if none of its messages is left unsent."""
    # Each dispatcher checks after committing its own batch, so whichever
    # finishes last sees every other batch committed and marks it done. The
    # sweeps that retry, expire and reconcile messages check too.
    unsent = Message.objects.filter(
        campaign_id=campaign_id, status__in=list(Message.UNSENT_STATUSES)
    )
    if unsent.exists():
        return
    finished = Campaign.objects.filter(
        pk=campaign_id,
        status__in=[Campaign.Status.QUEUED, Campaign.Status.SENDING],
    ).update(status=Campaign.Status.DONE, completed_at=timezone.now())
    if finished:
        logger.info("campaign done id=%s", campaign_id)


def campaign_progress(*, campaign: Campaign) -> CampaignProgress:
    """The campaign's messages counted by where they are, in one query."""
    status = Message.Status
    counts = Message.objects.filter(campaign=campaign).aggregate(
        queued=Count("pk", filter=Q(status__in=list(Message.UNSENT_STATUSES))),
        submitted=Count("pk", filter=Q(status=status.SUBMITTED)),
        delivered=Count("pk", filter=Q(status=status.DELIVERED)),
        failed=Count("pk", filter=Q(status__in=[status.FAILED, status.EXPIRED])),
        cancelled=Count("pk", filter=Q(status=status.CANCELLED)),
    )
    return CampaignProgress(**counts)
