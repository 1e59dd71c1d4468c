"""Sending one text: validation, cost, queueing and the path to delivery."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.messaging.models import Message, SenderId
from tmc.messaging.services import message_dispatch, message_send
from tmc.testing import SENDER, CommitCapture, Tenant

NUMBER = "07400 123456"


def _balance(organisation: Organisation) -> int:
    organisation.refresh_from_db()
    return organisation.credit_balance


def test_a_sent_text_is_charged_per_part_and_delivered(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    body = "a" * 200  # two GSM-7 parts

    with committed(execute=True):
        message = message_send(user=tenant_a.user, recipient=NUMBER, body=body)

    message.refresh_from_db()
    assert message.recipient == "+447400123456"
    assert message.sender == SENDER
    assert (message.encoding, message.parts, message.credits) == ("GSM-7", 2, 2)
    assert message.status == Message.Status.DELIVERED
    assert message.provider_message_id.startswith("sim-")
    assert message.submitted_at is not None
    assert message.completed_at is not None
    assert _balance(tenant_a.organisation) == 98
    entry = CreditLedgerEntry.objects.filter(
        organisation=tenant_a.organisation, kind=CreditLedgerEntry.Kind.MESSAGE
    ).get()
    assert (entry.amount, entry.balance_after) == (-2, 98)


def test_a_failing_handset_reports_failure(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    SimulatedHandset.objects.create(
        number="+447400123456", outcome=SimulatedHandset.Outcome.FAIL
    )

    with committed(execute=True):
        message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hello")

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.failure_reason == "Handset unreachable"


def test_a_silent_handset_leaves_the_message_submitted(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    SimulatedHandset.objects.create(
        number="+447400123456", outcome=SimulatedHandset.Outcome.SILENT
    )

    with committed(execute=True):
        message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hello")

    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED


@override_settings(TMC_SIMULATOR_FAILURE_RATE=1.0)
def test_the_configured_failure_rate_applies_to_ordinary_handsets(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=True):
        message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hello")

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED


def test_a_second_dispatch_of_the_same_message_sends_nothing(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=True):
        message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hello")

    assert message_dispatch(message_id=message.pk) is None
    assert SimulatedDelivery.objects.count() == 1


@pytest.mark.parametrize(
    ("recipient", "body", "sender", "field", "reason"),
    [
        ("not a number", "Hello", "", "recipient", "not a phone number"),
        ("020 7946 0000", "Hello", "", "recipient", "not a mobile number"),
        (NUMBER, "", "", "body", "Write the message"),
        (NUMBER, "   \n ", "", "body", "Write the message"),
        (NUMBER, "a" * 919, "", "body", "needs 7 parts"),
        (NUMBER, "✓" * 403, "", "body", "needs 7 parts"),
        (NUMBER, "Hello", "Unknown", "sender", "not an approved sender"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(
    tenant_a: Tenant, recipient: str, body: str, sender: str, field: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        message_send(user=tenant_a.user, recipient=recipient, body=body, sender=sender)

    assert reason in " ".join(refused.value.message_dict[field])
    assert Message.objects.count() == 0
    assert _balance(tenant_a.organisation) == 100


def test_the_longest_allowed_text_is_accepted(tenant_a: Tenant) -> None:
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="a" * 918)

    assert message.parts == 6


def test_an_unapproved_sender_is_refused(tenant_a: Tenant) -> None:
    SenderId.objects.create(organisation=tenant_a.organisation, value="Pending")

    with pytest.raises(ValidationError, match="not an approved sender"):
        message_send(
            user=tenant_a.user, recipient=NUMBER, body="Hello", sender="Pending"
        )


def test_another_organisations_sender_is_refused(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    SenderId.objects.create(
        organisation=tenant_b.organisation, value="GlobexOnly", is_approved=True
    )

    with pytest.raises(ValidationError, match="not an approved sender"):
        message_send(
            user=tenant_a.user, recipient=NUMBER, body="Hello", sender="GlobexOnly"
        )


def test_insufficient_credit_refuses_and_keeps_the_balance(
    tenant_a: Tenant,
) -> None:
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(credit_balance=1)

    with pytest.raises(ValidationError, match="needs 2 credits"):
        message_send(user=tenant_a.user, recipient=NUMBER, body="a" * 200)

    assert Message.objects.count() == 0
    assert _balance(tenant_a.organisation) == 1
