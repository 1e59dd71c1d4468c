"""What follows an answer: auto-replies, the first N, and reminders."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.boomerang.answers import Kind
from tmc.boomerang.models import Question, Ticket
from tmc.boomerang.services import (
    FollowUps,
    numbers_add,
    question_create,
    question_send,
    reminders_send,
)
from tmc.boomerang.tests.helpers import ask, handsets, texts_to
from tmc.gateways.services import inbound_receive
from tmc.messaging.models import Message
from tmc.testing import Tenant, make_tenant

POOL = ["+447400900001", "+447400900002"]
BOOKED = "You're booked, see you Saturday"
FULL = "Sorry, the shifts are filled"


@pytest.fixture(autouse=True)
def _pool(db: None) -> None:
    numbers_add(numbers=POOL)


def _reply(sender: str, text: str, to: str = POOL[0]) -> None:
    inbound_receive(gateway="simulator", sender=sender, recipient=to, body=text)


def test_each_answer_gets_its_own_auto_reply(tenant_a: Tenant) -> None:
    yes, no, unclear = handsets(3)
    ask(
        tenant_a,
        [yes, no, unclear],
        FollowUps(auto_replies={"yes": "Thanks, see you Saturday", "no": "Noted"}),
    )

    _reply(yes, "Yes!")
    _reply(no, "nope")
    _reply(unclear, "maybe")

    assert texts_to(yes) == ["Thanks, see you Saturday"]
    assert texts_to(no) == ["Noted"]
    assert texts_to(unclear) == []
    # The auto-reply comes from the number the question came from.
    auto = Message.objects.order_by("pk").last()
    assert auto is not None
    assert auto.sender == POOL[0]


def test_the_first_n_yes_get_a_place_and_the_rest_are_told_it_is_full(
    tenant_a: Tenant,
) -> None:
    people = handsets(5)
    question = ask(
        tenant_a,
        people,
        FollowUps(
            limit_value="yes", limit_count=3, limit_reply=BOOKED, over_limit_reply=FULL
        ),
    )

    for person in people:
        _reply(person, "yes")

    assert [texts_to(p) for p in people] == [[BOOKED]] * 3 + [[FULL]] * 2
    places = Ticket.objects.filter(question=question).values_list("place", flat=True)
    assert sorted(p for p in places if p) == [1, 2, 3]


def test_a_second_answer_from_one_person_gets_no_second_follow_up(
    tenant_a: Tenant,
) -> None:
    person = handsets(1)[0]
    question = ask(
        tenant_a,
        [person],
        FollowUps(auto_replies={"yes": "Thanks"}),
    )
    Ticket.objects.filter(question=question).update(kind=Ticket.Kind.CONVERSATION)

    _reply(person, "yes")
    _reply(person, "YES")

    assert texts_to(person) == ["Thanks"]


def test_a_follow_up_that_cannot_be_paid_for_does_not_lose_the_answer(
    tenant_a: Tenant,
) -> None:
    person = handsets(1)[0]
    question = ask(tenant_a, [person], FollowUps(auto_replies={"yes": "Thanks"}))
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(credit_balance=0)

    _reply(person, "yes")

    ticket = Ticket.objects.get(question=question)
    assert ticket.answers.get().value == "yes"
    assert texts_to(person) == []


@pytest.mark.parametrize(
    ("follow_ups", "field"),
    [
        (FollowUps(auto_replies={"maybe": "?"}), "auto_replies"),
        (FollowUps(limit_count=2, limit_value="yes"), "limit_reply"),
        (
            FollowUps(
                limit_count=2, limit_value="B", limit_reply="a", over_limit_reply="b"
            ),
            "limit_value",
        ),
        (FollowUps(reminder_after=timedelta(hours=1)), "reminder_text"),
    ],
)
def test_follow_ups_that_cannot_work_are_refused(
    tenant_a: Tenant, follow_ups: FollowUps, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        question_create(
            user=tenant_a.user, title="Q", kind=Kind.YES_NO, follow_ups=follow_ups
        )

    assert field in refused.value.message_dict
    assert not Question.objects.exists()


def test_those_who_have_not_answered_are_reminded_once(tenant_a: Tenant) -> None:
    answered, silent = handsets(2)
    ask(
        tenant_a,
        [answered, silent],
        FollowUps(
            reminder_after=timedelta(hours=2), reminder_text="Reminder: Saturday?"
        ),
    )
    _reply(answered, "yes")
    later = timezone.now() + timedelta(hours=2, minutes=1)

    assert reminders_send(now=timezone.now()) == 0
    assert reminders_send(now=later) == 1
    assert reminders_send(now=later) == 0
    assert texts_to(silent) == ["Reminder: Saturday?"]
    assert texts_to(answered) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("repeat", range(3))
def test_the_first_n_holds_when_every_yes_arrives_at_once(repeat: int) -> None:
    """Six people answer YES at the same instant; exactly three get a place."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella", credits=1000)
    people = handsets(6)
    question = ask(
        tenant,
        people,
        FollowUps(
            limit_value="yes", limit_count=3, limit_reply=BOOKED, over_limit_reply=FULL
        ),
    )
    start = threading.Barrier(len(people))
    errors: list[Exception] = []

    def answer(person: str) -> None:
        start.wait()
        try:
            _reply(person, "YES")
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=answer, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    texts: dict[str, Any] = {p: tuple(texts_to(p)) for p in people}
    assert Counter(texts.values()) == {(BOOKED,): 3, (FULL,): 3}
    places = Ticket.objects.filter(question=question, place__isnull=False)
    assert sorted(p or 0 for p in places.values_list("place", flat=True)) == [1, 2, 3]


def test_a_single_question_send_still_works_without_follow_ups(
    tenant_a: Tenant,
) -> None:
    message = question_send(user=tenant_a.user, recipient="07400 123456", body="Hi?")

    assert message.sender == POOL[0]
