"""Replies stored as they arrive and matched to their questions in batches."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import close_old_connections, connection

from tmc.audit.models import Event
from tmc.audit.services import chains_verify
from tmc.boomerang.models import Answer, Ticket
from tmc.boomerang.services import FollowUps, numbers_add
from tmc.boomerang.tests.helpers import ask, handsets, texts_to
from tmc.contacts.services import opted_out
from tmc.gateways.inbound import replies_match_pending
from tmc.gateways.services import inbound_accept
from tmc.messaging.models import InboundMessage
from tmc.notifications.models import Notification
from tmc.testing import Tenant, make_tenant

POOL = ["+447400900001", "+447400900002"]
BODY = "Can you work Saturday? Reply YES or NO"
BOOKED = "You're booked, see you Saturday"
FULL = "Sorry, the shifts are filled"


@pytest.fixture(autouse=True)
def _pool(db: None) -> None:
    numbers_add(numbers=POOL)


def _accept(sender: str, text: str, to: str = POOL[0]) -> InboundMessage:
    return inbound_accept(gateway="bench", sender=sender, recipient=to, body=text)


def test_an_accepted_reply_waits_unseen_until_matched(tenant_a: Tenant) -> None:
    people = handsets(1, block=22)
    ask(tenant_a, people)

    inbound = _accept(people[0], "yes")

    waiting = InboundMessage.objects.get(pk=inbound.pk)
    assert (waiting.matched_at, waiting.organisation_id) == (None, None)
    assert not Answer.objects.exists()
    assert len(replies_match_pending()) == 1
    matched = InboundMessage.objects.get(pk=inbound.pk)
    assert matched.matched_at is not None
    assert matched.organisation_id == tenant_a.organisation.pk
    # Sealed again under the organisation's key, and still readable.
    assert (matched.sender, matched.body) == (people[0], "yes")
    assert len(replies_match_pending()) == 0


def test_a_batch_answers_everyone_closes_tickets_and_tells_the_owner(
    tenant_a: Tenant,
) -> None:
    people = handsets(5, block=22)
    question = ask(tenant_a, people)
    texts = ["yes", "Nope", "YES please", "maybe", "y"]
    for person, text in zip(people, texts, strict=True):
        _accept(person, text)

    assert len(replies_match_pending(limit=200)) == 5

    answers = Answer.objects.filter(ticket__question=question).order_by("pk")
    assert [(a.value, a.needs_attention) for a in answers] == [
        ("yes", False),
        ("no", False),
        ("yes", False),
        ("", True),
        ("yes", False),
    ]
    assert not Ticket.objects.filter(status=Ticket.Status.OPEN).exists()
    notices = Notification.objects.filter(
        recipient=tenant_a.user, kind="reply_received"
    )
    assert notices.count() == 5
    assert Event.objects.filter(action="answer.received").count() == 5
    assert chains_verify().problems == []


def test_a_second_reply_in_one_batch_finds_the_ticket_already_answered(
    tenant_a: Tenant,
) -> None:
    people = handsets(1, block=22)
    question = ask(tenant_a, people)
    first = _accept(people[0], "yes")
    second = _accept(people[0], "no, sorry")

    replies_match_pending()

    answers = Answer.objects.filter(ticket__question=question)
    assert [a.inbound_id for a in answers] == [first.pk]
    second.refresh_from_db()
    # Kept with the organisation that asked, as a later reply would be.
    assert second.organisation_id == tenant_a.organisation.pk
    assert second.in_reply_to is not None


def test_stop_in_a_batch_opts_out_before_any_follow_up(tenant_a: Tenant) -> None:
    """A person who says YES and then STOP gets no auto-reply to the YES."""
    people = handsets(2, block=22)
    ask(
        tenant_a,
        people,
        FollowUps(auto_replies={"yes": "Thanks, see you Saturday"}),
    )
    Ticket.objects.update(kind=Ticket.Kind.CONVERSATION)
    _accept(people[0], "yes")
    _accept(people[0], "Stop!")
    _accept(people[1], "yes")

    replies_match_pending()

    assert opted_out(tenant_a.organisation, people[0])
    assert texts_to(people[0]) == []
    assert texts_to(people[1]) == ["Thanks, see you Saturday"]


def test_a_reply_that_cannot_be_matched_does_not_hold_up_the_others(
    tenant_a: Tenant,
) -> None:
    people = handsets(3, block=22)
    question = ask(tenant_a, people)
    good = [_accept(people[0], "yes"), _accept(people[2], "no")]
    broken = _accept(people[1], "yes")
    # A row whose sealed text was altered: opening it fails.
    sealed = InboundMessage.objects.get(pk=broken.pk).body_sealed
    altered = sealed[:-4] + ("AAAA" if sealed[-4:] != "AAAA" else "BBBB")
    InboundMessage.objects.filter(pk=broken.pk).update(body_sealed=altered)

    assert len(replies_match_pending()) == 3

    answered = Answer.objects.filter(ticket__question=question)
    assert sorted(a.inbound_id for a in answered) == sorted(g.pk for g in good)
    broken.refresh_from_db()
    assert broken.matched_at is not None
    assert broken.organisation_id is None
    assert not InboundMessage.objects.filter(matched_at__isnull=True).exists()


def test_accepted_replies_are_matched_by_the_task_after_commit(
    tenant_a: Tenant, committed: Any
) -> None:
    people = handsets(2, block=22)
    question = ask(tenant_a, people)

    with committed(execute=True):
        _accept(people[0], "yes")
        _accept(people[1], "no")

    assert Answer.objects.filter(ticket__question=question).count() == 2
    assert not InboundMessage.objects.filter(matched_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_first_n_holds_with_two_workers_matching_batches_at_once() -> None:
    """Twelve YES wait; two workers match them at once; three get a place."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella", credits=1000)
    people = handsets(12, block=22)
    question = ask(
        tenant,
        people,
        FollowUps(
            limit_value="yes", limit_count=3, limit_reply=BOOKED, over_limit_reply=FULL
        ),
    )
    for person in people:
        _accept(person, "YES")
    start = threading.Barrier(2)
    errors: list[Exception] = []

    def work() -> None:
        start.wait()
        try:
            while replies_match_pending(limit=3):
                pass
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            close_old_connections()

    workers = [threading.Thread(target=work) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    texts = Counter(tuple(texts_to(p)) for p in people)
    assert texts == {(BOOKED,): 3, (FULL,): 9}
    places = Ticket.objects.filter(question=question, place__isnull=False)
    assert sorted(p or 0 for p in places.values_list("place", flat=True)) == [1, 2, 3]
    assert Answer.objects.filter(ticket__question=question).count() == 12
