"""The SMPP adapter's rules: queueing parts, recording answers and receipts.

The bind worker (``bind.py``) owns the socket and calls these; each one is a
short transaction, so several workers (one per bind) can share the queue.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from tmc.gateways.base import DeliveryState
from tmc.gateways.services import (
    MessageReport,
    message_report_receive,
    message_reports_receive,
)
from tmc.gateways.smpp.codec import Receipt, ReceiptState, id_key, id_other_base
from tmc.gateways.smpp.models import SmppHeldReceipt, SmppPart
from tmc.lib.segments import Encoding, count_segments
from tmc.messaging.models import Message

logger = logging.getLogger(__name__)

NAME = "smpp"

State = SmppPart.State
_OPEN = [State.QUEUED, State.SENT, State.ACCEPTED, State.UNANSWERED]


def parts_queue_many(
    *, messages: Sequence[tuple[int, int]], gateway: str = NAME
) -> list[SmppPart]:
    """Queue the parts of (message id, parts) pairs, in one INSERT.

    In the caller's transaction. The concatenation reference only has to
    differ between long messages to one handset that are in flight
    together; the message id's low byte does.
    """
    return SmppPart.objects.bulk_create(
        (
            SmppPart(
                message_id=message_id,
                gateway=gateway,
                sequence=n,
                total=total,
                reference=message_id % 256,
            )
            for message_id, total in messages
            for n in range(1, total + 1)
        ),
        batch_size=1000,
    )


@dataclass(frozen=True)
class ClaimedPart:
    part_id: int
    message_id: int
    sender: str
    recipient: str
    text: str
    encoding: Encoding
    sequence: int
    total: int
    reference: int


def parts_claim(*, bind: str, limit: int, gateway: str = NAME) -> list[ClaimedPart]:
    """Take up to ``limit`` queued parts, oldest first, and mark them sent.

    They are marked before they are written to the socket: a worker that
    dies in between leaves them sent-but-unanswered, for reconciliation,
    rather than sending them twice.
    """
    with transaction.atomic():
        queued = SmppPart.objects.filter(gateway=gateway, state=State.QUEUED).order_by(
            "id"
        )
        if connection.features.has_select_for_update_skip_locked:
            # Two binds claiming at once each take different rows instead
            # of waiting for one another.
            queued = queued.select_for_update(skip_locked=True, of=("self",))
        ids = list(queued.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        SmppPart.objects.filter(pk__in=ids).update(
            state=State.SENT, bind=bind, sent_at=timezone.now()
        )
    parts = SmppPart.objects.filter(pk__in=ids).select_related("message").order_by("id")
    claimed = []
    split: dict[int, tuple[Encoding, tuple[str, ...]]] = {}
    for part in parts:
        message = part.message
        if message.pk not in split:
            # Counted again from the body: the parts a handset gets are the
            # ones the compose page showed, escape and surrogate pairs whole.
            segments = count_segments(message.body)
            split[message.pk] = (segments.encoding, segments.part_texts)
        encoding, texts = split[message.pk]
        claimed.append(
            ClaimedPart(
                part_id=part.pk,
                message_id=message.pk,
                sender=message.sender,
                recipient=message.recipient,
                text=texts[part.sequence - 1],
                encoding=encoding,
                sequence=part.sequence,
                total=part.total,
                reference=part.reference,
            )
        )
    return claimed


def parts_requeue(*, part_ids: Sequence[int]) -> None:
    """Put parts the SMSC refused for now (throttled) back in the queue.

    They keep their ids, so they go again before anything queued later.
    """
    SmppPart.objects.filter(pk__in=part_ids, state=State.SENT).update(
        state=State.QUEUED, bind="", sent_at=None
    )


def parts_unanswered(*, part_ids: Sequence[int] = (), bind: str = "") -> int:
    """Mark sent parts whose bind was lost before the SMSC answered.

    The SMSC may or may not have taken them; sending again could deliver
    twice, so they wait for an operator (or a query_sm) to reconcile, and
    their messages stay submitting. With ``bind``, every part that bind had
    in flight (after a crash) is marked.
    """
    sent = SmppPart.objects.filter(state=State.SENT)
    parts = sent.filter(bind=bind) if bind else sent.filter(pk__in=part_ids)
    count = parts.update(
        state=State.UNANSWERED,
        detail="Bind lost before submit_sm_resp; the SMSC may have it.",
    )
    if count:
        logger.warning("smpp parts left unanswered count=%s bind=%s", count, bind)
    return count


@dataclass(frozen=True)
class Answer:
    part_id: int
    command_status: int
    provider_message_id: str = ""
    detail: str = ""


def answers_record(*, answers: Sequence[Answer], gateway: str = NAME) -> None:
    """Store a batch of submit_sm_resp: ids for accepted parts, codes for refused.

    A message is submitted once every part is accepted, and failed as soon
    as one is refused (its queued parts are then not sent). Receipts that
    arrived before an id are applied once the id is stored.
    """
    now = timezone.now()
    with transaction.atomic():
        # Only parts still waiting for their answer: a repeated answer, or
        # one for a part reconciled meanwhile, changes nothing.
        waiting = {
            pk: message_id
            for pk, message_id in SmppPart.objects.select_for_update()
            .filter(pk__in=[a.part_id for a in answers], state=State.SENT)
            .values_list("pk", "message_id")
        }
        accepted = [
            a for a in answers if a.command_status == 0 and a.part_id in waiting
        ]
        refused = [a for a in answers if a.command_status != 0 and a.part_id in waiting]
        _accepted_store(accepted, now)

        touched = {waiting[a.part_id] for a in accepted}
        still_open = SmppPart.objects.filter(
            message_id__in=touched,
            state__in=[State.QUEUED, State.SENT, State.UNANSWERED],
        ).values("message_id")
        Message.objects.filter(
            pk__in=touched, status=Message.Status.SUBMITTING
        ).exclude(pk__in=still_open).update(
            status=Message.Status.SUBMITTED, submitted_at=now
        )

        for answer in refused:
            _refused_store(answer, now)

        held = _held_for(accepted)
    if held:
        receipts_record(receipts=held, gateway=gateway)


def _accepted_store(accepted: Sequence[Answer], now: datetime) -> None:
    # One plain UPDATE by id per part, sent with executemany: bulk_update's
    # CASE per column cost more to build than the rest of the batch.
    if not accepted:
        return
    table = connection.ops.quote_name(SmppPart._meta.db_table)
    answered_at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET state = %s, answered_at = %s, "  # noqa: S608  # nosec B608
            "command_status = 0, provider_message_id = %s, provider_key = %s, "
            "provider_alt_key = %s WHERE id = %s AND state = %s",
            [
                (
                    str(State.ACCEPTED),
                    answered_at,
                    answer.provider_message_id,
                    id_key(answer.provider_message_id),
                    id_other_base(answer.provider_message_id),
                    answer.part_id,
                    str(State.SENT),
                )
                for answer in accepted
            ],
        )


def _refused_store(answer: Answer, now: datetime) -> None:
    """Fail a refused part's message and cancel its parts not yet sent."""
    SmppPart.objects.filter(pk=answer.part_id).update(
        state=State.REFUSED,
        answered_at=now,
        command_status=answer.command_status,
        detail=answer.detail[:200],
    )
    part = SmppPart.objects.get(pk=answer.part_id)
    SmppPart.objects.filter(message_id=part.message_id, state=State.QUEUED).update(
        state=State.CANCELLED
    )
    message_report_receive(
        gateway=part.gateway,
        message_id=part.message_id,
        state=DeliveryState.FAILED,
        reason=f"The SMSC refused part {part.sequence} of {part.total}: "
        f"{answer.detail}",
    )
    logger.warning(
        "smpp part refused message_id=%s part=%s command_status=0x%08x",
        part.message_id,
        part.sequence,
        answer.command_status,
    )


def _held_for(accepted: Iterable[Answer]) -> list[Receipt]:
    """Take the held receipts that the newly known ids match."""
    keys = set()
    for answer in accepted:
        keys.add(id_key(answer.provider_message_id))
        keys.add(id_other_base(answer.provider_message_id))
    keys.discard("")
    if not keys or not SmppHeldReceipt.objects.exists():
        return []
    held = list(SmppHeldReceipt.objects.filter(key__in=keys))
    SmppHeldReceipt.objects.filter(pk__in=[h.pk for h in held]).delete()
    return [
        Receipt(ids=(h.key,), state=ReceiptState(h.state), stat=h.stat, error=h.error)
        for h in held
    ]


@dataclass(frozen=True)
class _Named:
    part_id: int
    message_id: int
    final: bool


def _parts_named(receipts: Sequence[Receipt], gateway: str) -> list[_Named | None]:
    """The part each receipt names: the exact id first, then the other base.

    Two queries for the whole batch; where an id was reused, the newest part
    with it wins.
    """
    keys = {id_key(i) for receipt in receipts for i in receipt.ids}
    parts = SmppPart.objects.select_for_update().filter(gateway=gateway)
    by_key: dict[str, _Named] = {}
    by_alt_key: dict[str, _Named] = {}
    for lookup, found in (("provider_key", by_key), ("provider_alt_key", by_alt_key)):
        rows = parts.filter(**{f"{lookup}__in": keys}).order_by("id")
        for pk, message_id, state, key in rows.values_list(
            "pk", "message_id", "state", lookup
        ):
            found[key] = _Named(pk, message_id, state in SmppPart.FINAL_STATES)
        keys -= found.keys()
        if not keys:
            break

    named: list[_Named | None] = []
    for receipt in receipts:
        ids = [id_key(i) for i in receipt.ids]
        candidates = [by_key[i] for i in ids if i in by_key] or [
            by_alt_key[i] for i in ids if i in by_alt_key
        ]
        named.append(candidates[0] if candidates else None)
    return named


def receipts_record(*, receipts: Sequence[Receipt], gateway: str = NAME) -> None:
    """Apply delivery receipts to their parts, and settle their messages.

    A receipt naming an id no part has yet is held until the submit_sm_resp
    that brings it is stored (``answers_record`` applies it then). The
    batch is a few statements whatever its size: the parts are found
    together, changed with one UPDATE per outcome, and their messages
    settled together.
    """
    now = timezone.now()
    final = [r for r in receipts if r.state is not ReceiptState.PENDING]
    if not final:
        return
    with transaction.atomic():
        named = _parts_named(final, gateway)
        unknown = [r for r, part in zip(final, named, strict=True) if part is None]
        SmppHeldReceipt.objects.bulk_create(
            SmppHeldReceipt(
                key=id_key(receipt.ids[0]),
                state=receipt.state,
                stat=receipt.stat[:16],
                error=receipt.error[:16],
            )
            for receipt in unknown
        )
        if unknown:
            logger.info("smpp receipts held count=%s", len(unknown))

        # The first receipt for a part that is not yet final decides it: a
        # repeated receipt, or one for a part already final, changes nothing.
        outcomes: dict[tuple[State, str], list[int]] = defaultdict(list)
        decided: set[int] = set()
        touched: set[int] = set()
        for receipt, part in zip(final, named, strict=True):
            if part is None or part.final or part.part_id in decided:
                continue
            new_state = (
                State.DELIVERED
                if receipt.state is ReceiptState.DELIVERED
                else State.FAILED
            )
            detail = f"stat:{receipt.stat} err:{receipt.error}"[:200]
            outcomes[new_state, detail].append(part.part_id)
            decided.add(part.part_id)
            touched.add(part.message_id)
        for (outcome, detail), part_ids in outcomes.items():
            SmppPart.objects.filter(pk__in=part_ids).exclude(
                state__in=SmppPart.FINAL_STATES
            ).update(state=outcome, reported_at=now, detail=detail)
        _messages_settle(touched, gateway)


def _messages_settle(message_ids: Collection[int], gateway: str) -> None:
    """Give each message one status from its parts' receipts.

    It failed as soon as one part failed (the handset cannot show the whole
    text); it is delivered once every part is.
    """
    parts: dict[int, list[tuple[int, int, str, str]]] = defaultdict(list)
    rows = SmppPart.objects.filter(message_id__in=message_ids).order_by(
        "message_id", "sequence"
    )
    for message_id, sequence, total, state, detail in rows.values_list(
        "message_id", "sequence", "total", "state", "detail"
    ):
        parts[message_id].append((sequence, total, state, detail))
    reports = []
    for message_id, its_parts in parts.items():
        failed = [p for p in its_parts if p[2] == State.FAILED]
        if failed:
            sequence, total, _, detail = failed[0]
            reason = (
                f"Not delivered ({detail})"
                if total == 1
                else f"Part {sequence} of {total} not delivered ({detail})"
            )
            reports.append(MessageReport(message_id, DeliveryState.FAILED, reason))
        elif all(p[2] == State.DELIVERED for p in its_parts):
            reports.append(MessageReport(message_id, DeliveryState.DELIVERED))
    message_reports_receive(gateway=gateway, reports=reports)
