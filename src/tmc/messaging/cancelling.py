"""Cancelling a campaign that has not finished: withdraw, refund once.

A campaign still queued (held for quiet hours, say) or sending can be
cancelled by its author, a Controller or an Administrator. Its messages not
yet handed to a gateway are withdrawn (CANCELLED) and their credits come
back in one ledger refund, their free parts to this month's allowance.
Messages a dispatcher has already claimed (SUBMITTING) go ahead: they are
being handed over at that moment and are charged as sent. One that such a
dispatcher's worker then leaves behind is put back in the queue by the
reconciler, where no dispatcher of a cancelled campaign takes it, and the
expiry sweep refunds it.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry
from tmc.accounts.pricing import allowance_give_back
from tmc.accounts.services import credits_add
from tmc.audit.services import event_record
from tmc.identity.models import Role, User
from tmc.messaging.models import Campaign, Message

logger = logging.getLogger(__name__)

CANCELLABLE = (Campaign.Status.QUEUED, Campaign.Status.SENDING)
# Not in a worker's hands: QUEUED (waiting or held) and RETRYING.
WITHDRAWABLE = (Message.Status.QUEUED, Message.Status.RETRYING)
CANCELLED_REASON = "Withdrawn: the campaign was cancelled."
FINISHED = "This campaign has finished: there is nothing left to cancel."


def campaign_may_cancel(user: User, campaign: Campaign) -> bool:
    """Its author, a Controller or an Administrator may cancel it."""
    return campaign.created_by_id == user.pk or user.role in (
        Role.CONTROLLER,
        Role.ADMINISTRATOR,
    )


def campaign_cancel(
    *, user: User, campaign: Campaign, request: HttpRequest | None = None
) -> int:
    """Cancel the campaign, withdraw its unsent messages; return how many.

    Raises PermissionDenied for someone who may not cancel it, and
    ValidationError when it has already finished or been cancelled. The
    credits of the withdrawn messages are refunded exactly once.
    """
    if campaign.organisation_id != user.organisation_id:
        raise PermissionDenied("Not this organisation's campaign.")
    if not campaign_may_cancel(user, campaign):
        raise PermissionDenied("Only its author or a manager may cancel it.")

    now = timezone.now()
    with transaction.atomic():
        # The conditional UPDATE is the claim on the cancellation: of two
        # people cancelling at once, one moves the campaign and refunds,
        # the other is told it has finished. A cancelled campaign's
        # dispatchers and quiet-hours release do nothing from here on.
        if not Campaign.objects.filter(pk=campaign.pk, status__in=CANCELLABLE).update(
            status=Campaign.Status.CANCELLED, completed_at=now, hold_until=None
        ):
            raise ValidationError(FINISHED)
        # Conditional too. On PostgreSQL it waits for a dispatcher that holds
        # some of these rows in its claim, then re-reads them and leaves
        # those it moved to SUBMITTING; a dispatcher arriving later skips
        # the rows locked here (SKIP LOCKED) and then finds them withdrawn.
        # On SQLite transactions take the write lock when they begin, so a
        # claim and this withdrawal simply take turns.
        withdrawn = Message.objects.filter(
            campaign_id=campaign.pk, status__in=WITHDRAWABLE
        ).update(
            status=Message.Status.CANCELLED,
            failure_reason=CANCELLED_REASON,
            completed_at=now,
            next_attempt_at=None,
        )
        # Only this transaction ever moves the campaign's messages to
        # CANCELLED (the campaign's own UPDATE above made it the one), so
        # their sum is exactly what it withdrew.
        withdrawn_cost = Message.objects.filter(
            campaign_id=campaign.pk, status=Message.Status.CANCELLED
        ).aggregate(credits=Sum("credits"), free=Sum("free_parts"))
        refund = withdrawn_cost["credits"] or 0
        free_back = allowance_give_back(
            user.organisation, withdrawn_cost["free"] or 0, campaign.created_at
        )
        if refund:
            credits_add(
                organisation=user.organisation,
                amount=refund,
                kind=CreditLedgerEntry.Kind.REFUND,
                reason=f"Refund for campaign {campaign.pk} (cancelled)",
            )
        event_record(
            action="campaign.cancelled",
            actor=user,
            target=campaign,
            details={
                "campaign": campaign.pk,
                "withdrawn": withdrawn,
                "credits_refunded": refund,
                "free_parts_returned": free_back,
            },
            request=request,
        )
    campaign.refresh_from_db()
    logger.info(
        "campaign cancelled id=%s withdrawn=%s credits_refunded=%s",
        campaign.pk,
        withdrawn,
        refund,
    )
    return withdrawn
