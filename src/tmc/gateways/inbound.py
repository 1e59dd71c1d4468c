"""Texts from handsets: stored as they arrive, matched in batches.

A gateway's text is stored at once as one sealed row waiting to be matched
(``inbound_accept``), so the provider is answered without waiting for the
rest; a worker then matches the waiting texts a few hundred at a time
(``replies_match_pending``): one query finds the open tickets of the whole
batch, and the rows, conversation entries, answers, ticket closures, the
owners' notices and the activity events are each written with one or a few
statements. ``inbound_receive`` stores and matches one text in one
transaction, for the simulator and for callers that need the outcome.

A text belongs to the open ticket on its pair of numbers, else to the
organisation that owns the number or last used the pair, else to nobody: it
then waits in the provider's unmatched inbox and is never dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from tmc.api import webhooks
from tmc.api.models import EmailOrigin, WebhookEndpoint, WebhookEvent
from tmc.boomerang.services import (
    ReplyRoute,
    answers_record,
    keyword_apply,
    pool_keyword_apply,
    reply_route_untracked,
    tickets_open_locked,
)
from tmc.contacts.services import reply_keyword_apply
from tmc.lib.phone import mask_number
from tmc.messaging.models import InboundMessage
from tmc.notifications.catalogue import Kind
from tmc.notifications.services import Notice, notify_each

logger = logging.getLogger(__name__)

MATCH_BATCH = 200
# Set while a matching task is queued or running (with Redis, shared by
# every process): texts that arrive meanwhile need no task of their own.
MATCH_QUEUED_SECONDS = 30


def _match_queued_key() -> str:
    # Per queue, as installations sharing a Redis are told apart by it.
    return f"{settings.HUEY['name']}:replies-match-queued"


def _store(*, gateway: str, sender: str, recipient: str, body: str) -> InboundMessage:
    # Sealed under the platform's key until matching names the organisation.
    inbound = InboundMessage(gateway=gateway, recipient=recipient)
    inbound.seal(sender=sender, body=body)
    inbound.save()
    return inbound


def inbound_accept(
    *, gateway: str, sender: str, recipient: str, body: str
) -> InboundMessage:
    """Store a text from a handset to be matched soon; answer the gateway now.

    One insert, committed by itself when the caller holds no transaction:
    once this returns the text is kept, whatever happens next. A worker
    matches it (``replies_match_pending``), queued once the insert commits.
    """
    # No transaction of its own: in autocommit the INSERT is its own commit,
    # one round trip to the database where BEGIN/INSERT/COMMIT took two.
    inbound = _store(gateway=gateway, sender=sender, recipient=recipient, body=body)
    transaction.on_commit(replies_match_soon)
    logger.info("inbound accepted id=%s gateway=%s", inbound.pk, gateway)
    return inbound


@transaction.atomic
def inbound_receive(
    *, gateway: str, sender: str, recipient: str, body: str
) -> InboundMessage:
    """Store a text from a handset and match it, in one transaction.

    Returns the text with its organisation and the message it answers.
    """
    inbound = _store(gateway=gateway, sender=sender, recipient=recipient, body=body)
    replies_match([inbound])
    return inbound


def replies_match_soon() -> None:
    """Queue the matching task, unless one is already queued or running."""
    from tmc.gateways.tasks import replies_match_task

    # Without Redis the cache is each process's own and cannot tell whether
    # another process queued a task: queue one every time (the extra tasks
    # find nothing to do and end at once).
    shared = bool(settings.TMC_REDIS_URL)
    if shared and not cache.add(_match_queued_key(), 1, MATCH_QUEUED_SECONDS):
        return
    replies_match_task()


def replies_match_all() -> int:
    """Match waiting texts until none is left; the matching task's body.

    The "queued" mark is cleared before the last look, so a text stored
    after that look queues a task of its own rather than being missed.
    """
    matched = 0
    while len(batch := replies_match_pending()) == MATCH_BATCH:
        matched += len(batch)
    matched += len(batch)
    cache.delete(_match_queued_key())
    while batch := replies_match_pending():
        matched += len(batch)
    return matched


def replies_match_pending(*, limit: int = MATCH_BATCH) -> list[int]:
    """Match up to ``limit`` waiting texts, oldest first; return their ids.

    The ids are returned once the batch has committed.

    A batch that fails is matched again one text at a time, so one text that
    cannot be matched (a poison message) does not hold up the others: it is
    logged and left for the provider's unmatched inbox.
    """
    with transaction.atomic():
        pending = InboundMessage.objects.filter(matched_at__isnull=True).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            # Two workers matching at once: SKIP LOCKED passes over the
            # texts the other has claimed instead of waiting for them.
            pending = pending.select_for_update(skip_locked=True)
        # SQLite: transactions begin IMMEDIATE (see settings), so this one
        # holds the write lock from the claim to the commit.
        claimed = list(pending[:limit])
        if not claimed:
            return []
        try:
            with transaction.atomic():
                replies_match(claimed)
        except Exception:
            logger.exception(
                "reply batch failed, matching one at a time count=%s", len(claimed)
            )
            for inbound in claimed:
                _match_alone(inbound.pk)
    return [inbound.pk for inbound in claimed]


def _match_alone(inbound_id: int) -> None:
    # Still inside the batch's transaction, which holds the claim: each text
    # gets a savepoint, and a fresh copy of its row (the failed attempt may
    # have changed the one in memory).
    try:
        with transaction.atomic():
            replies_match([InboundMessage.objects.get(pk=inbound_id)])
    except Exception:
        logger.exception(
            "reply could not be matched id=%s; kept for the unmatched inbox",
            inbound_id,
        )
        InboundMessage.objects.filter(pk=inbound_id).update(matched_at=timezone.now())


def replies_match(inbounds: Sequence[InboundMessage]) -> None:
    """Match stored texts to their conversations and act on them.

    Call in a transaction, with ``inbounds`` in their order of arrival and
    not yet matched. Each finds its route; STOP and START change the opt-out
    lists before anything else, so no follow-up can reach a number that has
    just opted out; then the rows are moved to their organisations (sealed
    again under its key), answers read, follow-ups sent, owners told.
    """
    routes = _routes(inbounds)
    # STOP and START change the opt-out list before anything else, so no
    # send that follows can reach a number that has just opted out.
    for route, inbound in zip(routes, inbounds, strict=True):
        _keywords_apply(route, inbound)

    moment = timezone.now()
    for route, inbound in zip(routes, inbounds, strict=True):
        sender, body = inbound.sender, inbound.body
        inbound.organisation = route.organisation
        inbound.in_reply_to = route.message
        inbound.matched_at = moment
        if route.organisation is not None:
            inbound.seal(sender=sender, body=body)
    _rows_move(inbounds)
    matched = list(zip(routes, inbounds, strict=True))
    answers_record(matched)
    _owners_tell(matched)
    _webhooks_queue([i for i in inbounds if i.organisation_id is not None])
    logger.info(
        "replies matched count=%s on_tickets=%s",
        len(inbounds),
        sum(1 for route in routes if route.ticket is not None),
    )


def _rows_move(inbounds: Sequence[InboundMessage]) -> None:
    # One plain UPDATE by id per row, sent with executemany: Django's
    # bulk_update builds a CASE per column whose construction cost more
    # than the whole rest of a batch.
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET organisation_id = %s, in_reply_to_id = %s, "  # noqa: S608  # nosec B608
            "matched_at = %s, sender_sealed = %s, body_sealed = %s WHERE id = %s",
            [
                (
                    inbound.organisation_id,
                    inbound.in_reply_to_id,
                    connection.ops.adapt_datetimefield_value(inbound.matched_at),
                    inbound.sender_sealed,
                    inbound.body_sealed,
                    inbound.pk,
                )
                for inbound in inbounds
            ],
        )


def _routes(inbounds: Sequence[InboundMessage]) -> list[ReplyRoute]:
    tickets = tickets_open_locked({(i.sender_route, i.recipient) for i in inbounds})
    # A single ticket closes with its first reply: a second reply from the
    # same person in the same batch goes where it would had it come later.
    answered: set[int] = set()
    routes = []
    for inbound in inbounds:
        ticket = tickets.get((inbound.sender_route, inbound.recipient))
        if ticket is not None and ticket.pk not in answered:
            routes.append(ReplyRoute(ticket.organisation, ticket, ticket.message))
            if ticket.kind == ticket.Kind.SINGLE:
                answered.add(ticket.pk)
        else:
            routes.append(
                reply_route_untracked(
                    sender_route=inbound.sender_route, recipient=inbound.recipient
                )
            )
    return routes


def _keywords_apply(route: ReplyRoute, inbound: InboundMessage) -> None:
    if route.organisation is None:
        pool_keyword_apply(sender=inbound.sender, body=inbound.body)
        return
    keyword = reply_keyword_apply(
        organisation=route.organisation, sender=inbound.sender, body=inbound.body
    )
    if keyword is None and route.ticket is None:
        keyword_apply(
            organisation=route.organisation,
            recipient=inbound.recipient,
            sender=inbound.sender,
            body=inbound.body,
        )


def _owners_tell(matched: list[tuple[ReplyRoute, InboundMessage]]) -> None:
    """Alert each reply's author in the app (and by email, as they chose)."""
    answering = [(r.message, i) for r, i in matched if r.message is not None]
    notify_each(
        kind=Kind.REPLY_RECEIVED,
        notices=[
            Notice(
                message.created_by,
                {"sender_masked": mask_number(inbound.sender)},
                reverse("messaging:detail", kwargs={"message_id": message.pk}),
            )
            for message, inbound in answering
        ],
    )
    # A text sent by email has its replies emailed back (after commit).
    by_email = set(
        EmailOrigin.objects.filter(
            message_id__in={message.pk for message, _ in answering}
        ).values_list("message_id", flat=True)
    )
    if by_email:
        from tmc.api.email_to_sms import email_reply_forward

        for message, inbound in answering:
            if message.pk in by_email:
                email_reply_forward(
                    message=message, sender=inbound.sender, body=inbound.body
                )


def _webhooks_queue(inbounds: list[InboundMessage]) -> None:
    """Queue ``reply.received`` webhooks after commit, for those who listen."""
    organisations = {inbound.organisation_id for inbound in inbounds}
    listening = {
        organisation_id
        for organisation_id, events in WebhookEndpoint.objects.filter(
            organisation_id__in=organisations
        ).values_list("organisation_id", "events")
        if WebhookEvent.REPLY_RECEIVED.value in events
    }
    for inbound in inbounds:
        if inbound.organisation_id in listening:
            # Robust: a webhook problem must never undo the reply.
            transaction.on_commit(
                partial(webhooks.reply_notify, inbound_id=inbound.pk), robust=True
            )
