"""The SMPP adapter's rules: queueing parts, recording answers and receipts.

The bind worker (``bind.py``) owns the socket and calls these; each one is a
short transaction, so several workers (one per bind) can share the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from tmc.gateways.base import DeliveryState
from tmc.gateways.services import message_report_receive
from tmc.gateways.smpp.codec import Receipt, ReceiptState, id_key, id_other_base
from tmc.gateways.smpp.models import SmppHeldReceipt, SmppPart
from tmc.lib.segments import Encoding, count_segments
from tmc.messaging.models import Message

logger = logging.getLogger(__name__)

NAME = "smpp"

State = SmppPart.State
_OPEN = [State.QUEUED, State.SENT, State.ACCEPTED, State.UNANSWERED]


def parts_queue(*, message_id: int, total: int, gateway: str = NAME) -> list[SmppPart]:
    """Queue a message's parts for the bind, in the caller's transaction.

    The concatenation reference only has to differ between long messages to
    one handset that are in flight together; the message id's low byte does.
    """
    reference = message_id % 256
    return SmppPart.objects.bulk_create(
        SmppPart(
            message_id=message_id,
            gateway=gateway,
            sequence=n,
            total=total,
            reference=reference,
        )
        for n in range(1, total + 1)
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
    accepted = [a for a in answers if a.command_status == 0]
    refused = [a for a in answers if a.command_status != 0]
    with transaction.atomic():
        parts = SmppPart.objects.in_bulk([a.part_id for a in answers])
        changed = []
        for answer in answers:
            part = parts.get(answer.part_id)
            if part is None or part.state != State.SENT:
                continue
            part.answered_at = now
            part.command_status = answer.command_status
            if answer.command_status == 0:
                part.state = State.ACCEPTED
                part.provider_message_id = answer.provider_message_id
                part.provider_key = id_key(answer.provider_message_id)
                part.provider_alt_key = id_other_base(answer.provider_message_id)
            else:
                part.state = State.REFUSED
                part.detail = answer.detail[:200]
            changed.append(part)
        SmppPart.objects.bulk_update(
            changed,
            [
                "state",
                "answered_at",
                "command_status",
                "provider_message_id",
                "provider_key",
                "provider_alt_key",
                "detail",
            ],
        )

        touched = {parts[a.part_id].message_id for a in accepted if a.part_id in parts}
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
            part = parts.get(answer.part_id)
            if part is None or part.state != State.REFUSED:
                continue
            SmppPart.objects.filter(
                message_id=part.message_id, state=State.QUEUED
            ).update(state=State.CANCELLED)
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

        held = _held_for([p for p in changed if p.state == State.ACCEPTED])
    if held:
        receipts_record(receipts=held, gateway=gateway)


def _held_for(parts: Iterable[SmppPart]) -> list[Receipt]:
    """Take the held receipts that the newly known ids match."""
    keys = set()
    for part in parts:
        keys.add(part.provider_key)
        if part.provider_alt_key:
            keys.add(part.provider_alt_key)
    if not keys or not SmppHeldReceipt.objects.exists():
        return []
    held = list(SmppHeldReceipt.objects.filter(key__in=keys))
    SmppHeldReceipt.objects.filter(pk__in=[h.pk for h in held]).delete()
    return [
        Receipt(ids=(h.key,), state=ReceiptState(h.state), stat=h.stat, error=h.error)
        for h in held
    ]


def _part_for(receipt: Receipt, gateway: str) -> SmppPart | None:
    """The part a receipt names: the exact id first, then the other base."""
    keys = [id_key(i) for i in receipt.ids]
    parts = SmppPart.objects.filter(gateway=gateway)
    for key in keys:
        part = parts.filter(provider_key=key).order_by("-id").first()
        if part is not None:
            return part
    return parts.filter(provider_alt_key__in=keys).order_by("-id").first()


def receipts_record(*, receipts: Sequence[Receipt], gateway: str = NAME) -> None:
    """Apply delivery receipts to their parts, and settle their messages.

    A receipt naming an id no part has yet is held until the submit_sm_resp
    that brings it is stored (``answers_record`` applies it then).
    """
    now = timezone.now()
    touched: set[int] = set()
    with transaction.atomic():
        for receipt in receipts:
            if receipt.state is ReceiptState.PENDING:
                continue
            part = _part_for(receipt, gateway)
            if part is None:
                SmppHeldReceipt.objects.create(
                    key=id_key(receipt.ids[0]),
                    state=receipt.state,
                    stat=receipt.stat[:16],
                    error=receipt.error[:16],
                )
                logger.info("smpp receipt held provider_id=%s", receipt.ids[0])
                continue
            new_state = (
                State.DELIVERED
                if receipt.state is ReceiptState.DELIVERED
                else State.FAILED
            )
            # Conditional: a repeated receipt, or one for a part already
            # final, changes nothing.
            updated = (
                SmppPart.objects.filter(pk=part.pk)
                .filter(~Q(state__in=SmppPart.FINAL_STATES))
                .update(
                    state=new_state,
                    reported_at=now,
                    detail=f"stat:{receipt.stat} err:{receipt.error}"[:200],
                )
            )
            if updated:
                touched.add(part.message_id)
        for message_id in sorted(touched):
            _message_settle(message_id, gateway)


def _message_settle(message_id: int, gateway: str) -> None:
    """Give a message one status from its parts' receipts.

    It failed as soon as one part failed (the handset cannot show the whole
    text); it is delivered once every part is.
    """
    parts = list(
        SmppPart.objects.filter(message_id=message_id).values_list(
            "sequence", "total", "state", "detail"
        )
    )
    failed = [p for p in parts if p[2] == State.FAILED]
    if failed:
        sequence, total, _, detail = failed[0]
        reason = (
            f"Not delivered ({detail})"
            if total == 1
            else f"Part {sequence} of {total} not delivered ({detail})"
        )
        message_report_receive(
            gateway=gateway,
            message_id=message_id,
            state=DeliveryState.FAILED,
            reason=reason,
        )
    elif all(p[2] == State.DELIVERED for p in parts):
        message_report_receive(
            gateway=gateway, message_id=message_id, state=DeliveryState.DELIVERED
        )
