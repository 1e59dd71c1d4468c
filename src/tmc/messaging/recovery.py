"""The periodic sweeps that keep every accepted message moving to an end.

- ``messages_retry_due`` puts messages whose retry is due back in the queue.
- ``messages_expire`` closes unsent messages past their validity period as
  EXPIRED, and refunds them.
- ``messages_reconcile`` settles messages left SUBMITTING by a worker that
  died: the gateway's own record says whether it took them. Taken, they are
  SUBMITTED with the provider's id; not taken, they are queued again, to be
  sent once.

Each moves a message with a conditional UPDATE from the status it read, so
two sweeps running at once (two workers' schedulers) act on it once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from tmc.gateways.base import GatewayError
from tmc.gateways.registry import gateway_named
from tmc.messaging.campaigns import campaign_finish
from tmc.messaging.models import ERASED, Campaign, Message
from tmc.messaging.services import EXPIRED_REASON, message_close
from tmc.routing.services import route_gateways

logger = logging.getLogger(__name__)

SWEEP_ROWS = 1000


def _enqueue(message_ids: Iterable[int], campaign_ids: Iterable[int]) -> None:
    from tmc.messaging.tasks import message_dispatch_task, messages_dispatch_batch

    for message_id in message_ids:
        message_dispatch_task(message_id)
    # A campaign's messages go back through its batch dispatcher, which
    # also marks the campaign done when the last of them is sent.
    for campaign_id in campaign_ids:
        messages_dispatch_batch(campaign_id)


def messages_retry_due(*, now: datetime | None = None) -> int:
    """Queue again the messages whose next attempt is due; return how many."""
    now = now or timezone.now()
    due = list(
        Message.objects.filter(
            status=Message.Status.RETRYING, next_attempt_at__lte=now
        ).values_list("pk", "campaign_id")[:SWEEP_ROWS]
    )
    if not due:
        return 0
    requeued = Message.objects.filter(
        pk__in=[pk for pk, _ in due], status=Message.Status.RETRYING
    ).update(status=Message.Status.QUEUED, next_attempt_at=None)
    # Another sweep may have moved some of these first: a dispatch task for
    # a message it queued is then sent twice, and the second finds it
    # claimed and does nothing.
    _enqueue(
        [pk for pk, campaign in due if campaign is None],
        {campaign for _, campaign in due if campaign is not None},
    )
    logger.info("messages queued for retry count=%s", requeued)
    return requeued


def messages_expire(*, now: datetime | None = None) -> int:
    """Expire and refund unsent messages past their validity; return how many."""
    now = now or timezone.now()
    stale = list(
        Message.objects.filter(
            status__in=[Message.Status.QUEUED, Message.Status.RETRYING],
            expires_at__lte=now,
        ).values_list("pk", "campaign_id")[:SWEEP_ROWS]
    )
    expired = 0
    for pk, _ in stale:
        expired += message_close(
            message_id=pk,
            status=Message.Status.EXPIRED,
            reason=EXPIRED_REASON,
            from_statuses=[Message.Status.QUEUED, Message.Status.RETRYING],
        )
    for campaign_id in {campaign for _, campaign in stale if campaign is not None}:
        campaign_finish(campaign_id=campaign_id)
    if expired:
        logger.info("messages expired count=%s", expired)
    return expired


@dataclass(frozen=True)
class Reconciled:
    submitted: int = 0
    requeued: int = 0
    unknown: int = 0


def _gateway_record(message: Message) -> tuple[str, str] | None:
    """(gateway, provider id) if a gateway the message may have gone to took it.

    Raises GatewayError when one of them cannot answer now: the message is
    then left for the next run rather than guessed about.
    """
    names = [message.gateway] if message.gateway else []
    if message.recipient != ERASED:
        names += route_gateways(number=message.recipient)
    for name in dict.fromkeys(names):
        provider_id = gateway_named(name).lookup(message.pk)
        if provider_id:
            return name, provider_id
    return None


def _stalled_campaigns(stale_before: datetime) -> set[int]:
    """Sending campaigns with queued messages and no dispatcher at work.

    A worker that dies after taking a batch task from the queue but before
    claiming any message leaves nothing SUBMITTING to reconcile, and its
    campaign's chain of batch tasks ends there. A campaign is taken to be
    stalled when none of its messages was claimed or submitted since
    ``stale_before``; a spare dispatcher started for one that was only
    waiting in a long queue finds its batches claimed and ends.
    """
    stalled = set()
    sending = Campaign.objects.filter(
        status=Campaign.Status.SENDING,
        messages__status=Message.Status.QUEUED,
    ).distinct()
    for campaign_id in sending.values_list("pk", flat=True)[:SWEEP_ROWS]:
        active = Message.objects.filter(campaign_id=campaign_id).filter(
            Q(status=Message.Status.SUBMITTING)
            | Q(submitting_since__gte=stale_before)
            | Q(submitted_at__gte=stale_before)
        )
        if not active.exists():
            stalled.add(campaign_id)
    if stalled:
        logger.warning("stalled campaigns restarted count=%s", len(stalled))
    return stalled


def messages_reconcile(*, stale_before: datetime) -> Reconciled:
    """Settle messages SUBMITTING since before ``stale_before``.

    Their worker is taken to have died (the periodic task passes now minus
    TMC_RECONCILE_AFTER_SECONDS, far longer than a submission takes).
    """
    stale = Message.objects.filter(
        Q(submitting_since__lt=stale_before) | Q(submitting_since__isnull=True),
        status=Message.Status.SUBMITTING,
    ).order_by("pk")[:SWEEP_ROWS]
    submitted = requeued = unknown = 0
    requeue_ids: list[int] = []
    campaigns: set[int] = set()
    for message in stale:
        try:
            record = _gateway_record(message)
        except GatewayError:
            unknown += 1
            continue
        # Conditional on the claim it read: a message claimed again since
        # (by a reconciler that ran meanwhile) is left alone.
        claim = Message.objects.filter(
            pk=message.pk,
            status=Message.Status.SUBMITTING,
            submitting_since=message.submitting_since,
        )
        if record is not None:
            gateway, provider_id = record
            submitted += claim.update(
                status=Message.Status.SUBMITTED,
                gateway=gateway,
                provider_message_id=provider_id,
                submitted_at=timezone.now(),
            )
            if message.campaign_id is not None:
                campaign_finish(campaign_id=message.campaign_id)
        elif claim.update(status=Message.Status.QUEUED, submitting_since=None):
            requeued += 1
            if message.campaign_id is None:
                requeue_ids.append(message.pk)
            else:
                campaigns.add(message.campaign_id)
    campaigns |= _stalled_campaigns(stale_before)
    _enqueue(requeue_ids, campaigns)
    result = Reconciled(submitted=submitted, requeued=requeued, unknown=unknown)
    if submitted or requeued or unknown:
        logger.warning(
            "messages reconciled submitted=%s requeued=%s unknown=%s",
            submitted,
            requeued,
            unknown,
        )
    return result
