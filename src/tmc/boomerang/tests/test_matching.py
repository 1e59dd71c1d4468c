"""Replies land on the question that caused them, whatever else is open."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.audit.models import Event
from tmc.boomerang.answers import Kind
from tmc.boomerang.models import Answer, PoolOptOut, Ticket, VirtualNumber
from tmc.boomerang.services import (
    numbers_add,
    pool_is_full_for,
    question_create,
    question_send,
    tickets_expire,
)
from tmc.contacts.services import opted_out
from tmc.gateways.services import inbound_receive
from tmc.messaging.models import InboundMessage, Message
from tmc.testing import Tenant, make_tenant

POOL = ["+447400900001", "+447400900002", "+447400900003"]
HANDSET = "+447400123456"


@pytest.fixture
def pool(db: None) -> list[VirtualNumber]:
    return numbers_add(numbers=POOL)


def _ask(tenant: Tenant, title: str, **kwargs: Any) -> Message:
    question = question_create(user=tenant.user, title=title, kind=Kind.YES_NO)
    return question_send(
        user=tenant.user,
        recipient=kwargs.pop("recipient", "07400 123456"),
        body=f"{title}? Reply YES or NO",
        question=question,
        **kwargs,
    )


def _reply(to: str, body: str, sender: str = HANDSET) -> InboundMessage:
    return inbound_receive(gateway="simulator", sender=sender, recipient=to, body=body)


@pytest.mark.parametrize("questions", [1, 2, 3, 4, 5])
def test_each_open_question_to_one_person_has_its_own_number(
    tenant_a: Tenant, pool: list[VirtualNumber], questions: int
) -> None:
    """Up to five questions at once to one recipient, with a pool of three.

    The first three take the pool in order; from the fourth on, the oldest
    open question is closed and its number reused. Every reply then lands
    on the question sent from the number it was sent to.
    """
    sent = [_ask(tenant_a, f"Shift {n}") for n in range(questions)]

    expected_senders = [POOL[n % 3] for n in range(questions)]
    assert [m.sender for m in sent] == expected_senders
    open_tickets = Ticket.objects.filter(status=Ticket.Status.OPEN)
    assert open_tickets.count() == min(questions, 3)
    still_open = sent[-3:]
    for message in still_open:
        answer_text = "yes" if message.pk % 2 else "no"
        inbound = _reply(message.sender, answer_text)
        assert inbound.in_reply_to == message
        answer = Answer.objects.get(inbound=inbound)
        assert answer.ticket.message == message
        assert answer.value == answer_text
    assert not Ticket.objects.filter(status=Ticket.Status.OPEN).exists()


def test_the_pool_warns_before_a_number_is_reused(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    for n in range(3):
        assert not pool_is_full_for(tenant_a.organisation, HANDSET)
        _ask(tenant_a, f"Q{n}")

    assert pool_is_full_for(tenant_a.organisation, HANDSET)
    _ask(tenant_a, "Q3")
    reused = Ticket.objects.get(closed_reason="number reused")
    assert reused.question is not None
    assert reused.question.title == "Q0"


def test_two_organisations_share_the_pool_without_crossing_replies(
    tenant_a: Tenant, tenant_b: Tenant, pool: list[VirtualNumber]
) -> None:
    theirs = _ask(tenant_b, "Globex question")
    ours = _ask(tenant_a, "Acme question")

    assert (theirs.sender, ours.sender) == (POOL[0], POOL[1])
    inbound = _reply(POOL[1], "Yes")
    assert inbound.organisation == tenant_a.organisation
    assert inbound.in_reply_to == ours


def test_a_dedicated_number_serves_only_its_organisation(
    tenant_a: Tenant, tenant_b: Tenant, pool: list[VirtualNumber]
) -> None:
    numbers_add(numbers=["+447400900099"], organisation=tenant_a.organisation)

    assert _ask(tenant_a, "Ours").sender == "+447400900099"
    assert _ask(tenant_b, "Theirs").sender == POOL[0]


def test_a_deadline_ticket_takes_every_reply_until_it_expires(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    deadline = timezone.now() + timedelta(hours=2)
    message = _ask(tenant_a, "Rota", kind=Ticket.Kind.DEADLINE, closes_at=deadline)

    _reply(message.sender, "no")
    _reply(message.sender, "actually yes")
    ticket = Ticket.objects.get()
    assert ticket.status == Ticket.Status.OPEN
    assert [a.value for a in ticket.answers.all()] == ["no", ""]

    assert tickets_expire(now=deadline) == 1
    late = _reply(message.sender, "yes")
    # No open ticket now: the reply still reaches the organisation that
    # last used the pair, but answers no question.
    assert late.organisation == tenant_a.organisation
    assert not Answer.objects.filter(inbound=late).exists()


def test_a_deadline_in_the_past_is_refused_and_nothing_is_sent(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    with pytest.raises(ValidationError) as refused:
        _ask(
            tenant_a,
            "Late",
            kind=Ticket.Kind.DEADLINE,
            closes_at=timezone.now() - timedelta(minutes=1),
        )

    assert "closes_at" in refused.value.message_dict
    assert not Message.objects.exists()
    assert not Ticket.objects.exists()


def test_a_conversation_stays_open(tenant_a: Tenant, pool: list[VirtualNumber]) -> None:
    message = _ask(tenant_a, "Chat", kind=Ticket.Kind.CONVERSATION)

    for text in ("hi", "are you there?", "ok"):
        assert _reply(message.sender, text).in_reply_to == message
    assert Ticket.objects.get().status == Ticket.Status.OPEN


def test_a_reply_nobody_sent_to_is_kept_for_the_unmatched_inbox(
    pool: list[VirtualNumber],
) -> None:
    inbound = _reply(POOL[2], "Who is this?")

    assert inbound.organisation is None
    assert inbound.in_reply_to is None
    assert InboundMessage.objects.filter(pk=inbound.pk).exists()
    assert inbound.body == "Who is this?"


def test_stop_on_a_ticket_opts_out_before_the_answer_is_read(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    message = _ask(tenant_a, "Saturday")

    _reply(message.sender, "STOP")

    assert opted_out(tenant_a.organisation, HANDSET)
    assert Answer.objects.get().needs_attention
    with pytest.raises(ValidationError):
        _ask(tenant_a, "Sunday")
    assert Message.objects.count() == 1


def test_stop_after_the_ticket_closed_still_reaches_the_organisation(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    message = _ask(tenant_a, "Saturday")
    _reply(message.sender, "yes")

    _reply(message.sender, "stop.")

    assert opted_out(tenant_a.organisation, HANDSET)


def test_stop_to_the_shared_pool_from_a_stranger_blocks_the_pool_until_start(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    _reply(POOL[0], "Stop")

    assert PoolOptOut.objects.count() == 1
    assert not opted_out(tenant_a.organisation, HANDSET)
    with pytest.raises(ValidationError) as refused:
        _ask(tenant_a, "Hello")
    assert "texted STOP" in str(refused.value)

    _reply(POOL[1], "START")
    assert not PoolOptOut.objects.exists()
    assert _ask(tenant_a, "Hello").sender == POOL[0]
    assert Event.objects.filter(action="optout.pool_added").count() == 1


def test_a_question_without_numbers_in_the_pool_is_refused(tenant_a: Tenant) -> None:
    with pytest.raises(ValidationError) as refused:
        _ask(tenant_a, "Anyone")

    assert "No virtual number" in str(refused.value)
    assert not Message.objects.exists()
    assert Organisation.objects.get(pk=tenant_a.organisation.pk).credit_balance == 100


def test_a_question_costs_its_parts_and_is_logged_with_its_ticket(
    tenant_a: Tenant, pool: list[VirtualNumber]
) -> None:
    message = _ask(tenant_a, "Cost")

    event = Event.objects.get(action="message.sent")
    ticket = Ticket.objects.get()
    assert event.details["ticket"] == ticket.pk
    assert ticket.message == message
    assert Organisation.objects.get(pk=tenant_a.organisation.pk).credit_balance == 99


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("senders", [2, 3, 5])
def test_concurrent_questions_to_one_person_never_share_a_number(senders: int) -> None:
    """Workers sending at the same instant each get a different number.

    With five senders and three numbers, the extra two close the oldest
    tickets; still no two open tickets share a number.
    """
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella")
    numbers_add(numbers=POOL)
    start = threading.Barrier(senders)
    sent: list[Message] = []
    errors: list[Exception] = []

    def send(n: int) -> None:
        start.wait()
        try:
            sent.append(_ask(tenant, f"Parallel {n}"))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(sent) == senders
    open_numbers = list(
        Ticket.objects.filter(status=Ticket.Status.OPEN).values_list(
            "virtual_number__number", flat=True
        )
    )
    assert len(open_numbers) == len(set(open_numbers)) == min(senders, 3)
    if senders <= 3:
        assert sorted(m.sender for m in sent) == POOL[:senders]


def test_numbers_are_added_listed_and_retired_from_the_command_line(
    tenant_a: Tenant,
) -> None:
    out = StringIO()
    call_command("numbers", "add", *POOL, stdout=out)
    call_command("numbers", "add", "07400 900010", "--org", "Acme", stdout=out)
    call_command("numbers", "retire", POOL[2], stdout=out)
    listing = StringIO()
    call_command("numbers", "list", stdout=listing)

    assert "Added 3 number(s) to the shared pool." in out.getvalue()
    assert "Added 1 number(s) to Acme." in out.getvalue()
    rows = listing.getvalue().splitlines()
    assert any(POOL[2] in row and "retired" in row for row in rows)
    assert any("+447400900010" in row and "Acme" in row for row in rows)
    assert _ask(tenant_a, "Dedicated").sender == "+447400900010"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["add", "not-a-number"], "not a phone number"),
        (["add", "+447400900001", "--org", "Nobody"], "No organisation"),
        (["retire", "+447400900055"], "not an active number"),
    ],
)
def test_bad_numbers_commands_fail_clearly_and_change_nothing(
    db: None, arguments: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("numbers", *arguments)

    assert not VirtualNumber.objects.exists()
