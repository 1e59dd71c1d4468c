"""Correlation rules, without a socket: answers, held receipts, settling."""

from __future__ import annotations

from tmc.gateways.smpp.codec import Receipt, ReceiptState
from tmc.gateways.smpp.models import SmppHeldReceipt, SmppPart
from tmc.gateways.smpp.services import (
    Answer,
    answers_record,
    parts_claim,
    parts_queue_many,
    receipts_record,
)
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import Tenant


def _queued(tenant: Tenant, body: str) -> Message:
    message = message_send(user=tenant.user, recipient="07400 123456", body=body)
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTING, gateway="smpp"
    )
    parts_queue_many(messages=[(message.pk, message.parts)])
    return message


def test_a_receipt_that_overtakes_the_answer_is_held_then_applied(
    tenant_a: Tenant,
) -> None:
    message = _queued(tenant_a, "Hello")
    [claimed] = parts_claim(bind="b1", limit=10)

    receipts_record(
        receipts=[
            Receipt(
                ids=("000000ff",),
                state=ReceiptState.DELIVERED,
                stat="DELIVRD",
                error="000",
            )
        ]
    )
    assert SmppHeldReceipt.objects.count() == 1

    answers_record(answers=[Answer(claimed.part_id, 0, "FF")])

    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
    assert not SmppHeldReceipt.objects.exists()


def test_a_message_is_submitted_only_once_every_part_is_accepted(
    tenant_a: Tenant,
) -> None:
    message = _queued(tenant_a, "z" * 200)
    first, second = parts_claim(bind="b1", limit=10)

    answers_record(answers=[Answer(first.part_id, 0, "1")])
    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTING

    answers_record(answers=[Answer(second.part_id, 0, "2")])
    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED


def test_a_refused_part_cancels_the_parts_not_yet_sent(tenant_a: Tenant) -> None:
    message = _queued(tenant_a, "z" * 400)
    [first] = parts_claim(bind="b1", limit=1)

    answers_record(answers=[Answer(first.part_id, 0x45, detail="submit_sm failed")])

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    states = SmppPart.objects.filter(message=message).values_list("state", flat=True)
    assert list(states) == ["refused", "cancelled", "cancelled"]
    assert parts_claim(bind="b1", limit=10) == []


def test_a_repeated_receipt_changes_nothing(tenant_a: Tenant) -> None:
    message = _queued(tenant_a, "Hi")
    [claimed] = parts_claim(bind="b1", limit=1)
    answers_record(answers=[Answer(claimed.part_id, 0, "77")])
    delivered = Receipt(
        ids=("77",), state=ReceiptState.DELIVERED, stat="DELIVRD", error=""
    )
    failed = Receipt(ids=("77",), state=ReceiptState.FAILED, stat="UNDELIV", error="1")

    receipts_record(receipts=[delivered])
    receipts_record(receipts=[failed, delivered])

    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
    assert SmppPart.objects.get(message=message).state == SmppPart.State.DELIVERED


def test_a_stale_handed_over_message_is_settled_not_sent_again(
    tenant_a: Tenant,
) -> None:
    """The reconciler finds the parts the bind worker holds, and resends none."""
    from datetime import timedelta

    from django.utils import timezone

    from tmc.messaging.recovery import messages_reconcile

    message = _queued(tenant_a, "Hello")
    never_handed = message_send(user=tenant_a.user, recipient="07400 654321", body="x")
    Message.objects.filter(pk=never_handed.pk).update(
        status=Message.Status.SUBMITTING, gateway="smpp"
    )

    messages_reconcile(stale_before=timezone.now() + timedelta(seconds=1))

    message.refresh_from_db()
    never_handed.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED
    assert SmppPart.objects.filter(message=message).count() == 1
    # The one the bind worker never got went back to the queue, and the
    # route (the simulator here) sent it once.
    assert (never_handed.status, never_handed.gateway) == (
        Message.Status.SUBMITTED,
        "simulator",
    )
    assert not SmppPart.objects.filter(message=never_handed).exists()
