"""Asking a question and following its answers, through HTTP."""

from __future__ import annotations

import csv
import io
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tmc.boomerang.models import Answer, Question, Ticket
from tmc.boomerang.services import numbers_add
from tmc.identity.models import User
from tmc.messaging.models import InboundMessage, Message
from tmc.testing import Tenant

POOL = ["+447400900001", "+447400900002"]
PEOPLE = ["07400 111111", "07400 222222", "07400 333333"]


@pytest.fixture(autouse=True)
def _pool(db: None) -> None:
    numbers_add(numbers=POOL)


def _form(**overrides: Any) -> dict[str, Any]:
    data = {
        "title": "Saturday shift",
        "recipients": "\n".join(PEOPLE),
        "body": "Can you work Saturday? Reply YES or NO",
        "kind": "yes_no",
        "options": "",
        "language": "en",
        "ticket_kind": "single",
        "closes_at": "",
    }
    data.update(overrides)
    return data


def _ask(client: Any, committed: Any, **overrides: Any) -> Question:
    with committed(execute=True):
        response = client.post("/questions/new/", _form(**overrides))
    assert response.status_code == 302, response.content.decode()[:2000]
    return Question.objects.get()


def _reply_as_handset(client: Any, message: Message, text: str) -> None:
    response = client.post(f"/simulator/{message.pk}/reply/", {"body": text})
    assert response.status_code == 302


def test_a_question_to_three_people_collates_their_answers(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)

    question = _ask(client, committed)
    sent = list(Message.objects.order_by("pk"))
    _reply_as_handset(client, sent[0], "Yes!")
    _reply_as_handset(client, sent[1], "no thanks")
    _reply_as_handset(client, sent[2], "maybe")
    page = client.get(f"/questions/{question.pk}/").content.decode()

    assert len(sent) == 3
    assert {m.sender for m in sent} == {POOL[0]}
    assert 'data-testid="count-yes">1<' in page
    assert 'data-testid="count-no">1<' in page
    assert 'data-testid="needs-attention">1<' in page
    assert 'data-testid="not-answered">0<' in page


def test_the_results_poll_returns_only_the_panel_and_stops_when_all_closed(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)
    question = _ask(client, committed, recipients=PEOPLE[0])
    poll = {"HX-Request": "true", "X-TMC-Background": "1"}

    open_panel = client.get(f"/questions/{question.pk}/", headers=poll)
    _reply_as_handset(client, Message.objects.get(), "y")
    closed_panel = client.get(f"/questions/{question.pk}/", headers=poll)

    assert open_panel.content.decode().lstrip().startswith('<section id="results"')
    assert 'hx-trigger="every 1s"' in open_panel.content.decode()
    assert 'hx-trigger="every 1s"' not in closed_panel.content.decode()
    assert 'data-testid="count-yes">1<' in closed_panel.content.decode()


def test_a_multiple_choice_question_counts_each_option(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)
    question = _ask(
        client,
        committed,
        kind="choice",
        options="Morning\nAfternoon\nNight",
        body="Which shift? A, B or C",
    )
    sent = list(Message.objects.order_by("pk"))
    for message, text in zip(sent, ["b)", "2", "night"], strict=True):
        _reply_as_handset(client, message, text)

    page = client.get(f"/questions/{question.pk}/").content.decode()

    assert 'data-testid="count-B">2<' in page
    assert 'data-testid="count-C">1<' in page
    assert "A: Morning" in page


def test_more_than_one_recipient_needs_the_bulk_permission(
    tenant_a: Tenant,
) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(can_send_bulk=False)
    client = tenant_a.client_for(tenant_a.user)

    response = client.post("/questions/new/", _form())

    assert "one recipient at a time" in response.content.decode()
    assert not Message.objects.exists()
    assert not Question.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"recipients": "07400 111111\nnonsense"}, "recipients", "number 2"),
        ({"recipients": ""}, "recipients", "required"),
        ({"kind": "choice", "options": "Only one"}, "options", "at least two"),
        ({"ticket_kind": "deadline"}, "closes_at", "Choose when replies stop"),
        ({"body": ""}, "body", "required"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_sent(
    tenant_a: Tenant, overrides: dict[str, str], field: str, message: str
) -> None:
    client = tenant_a.client_for(tenant_a.controller)

    response = client.post("/questions/new/", _form(**overrides))

    page = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_{field}_error"' in page
    assert message in page
    assert 'value="Saturday shift"' in page
    assert not Message.objects.exists()
    assert not Ticket.objects.exists()


def test_numbers_on_the_results_page_follow_the_full_numbers_permission(
    tenant_a: Tenant, committed: Any
) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(
        can_view_full_numbers=False, can_send_bulk=True
    )
    question = _ask(tenant_a.client_for(tenant_a.user), committed)

    masked = tenant_a.client_for(tenant_a.user).get(f"/questions/{question.pk}/")
    full = tenant_a.client_for(tenant_a.controller).get(f"/questions/{question.pk}/")

    assert "+44 7400 111111" not in masked.content.decode()
    assert "+44 7400 1•••11" in masked.content.decode()
    assert "+44 7400 111111" in full.content.decode()


def test_a_user_follows_only_their_own_questions(
    tenant_a: Tenant, committed: Any
) -> None:
    question = _ask(tenant_a.client_for(tenant_a.controller), committed)
    client = tenant_a.client_for(tenant_a.user)

    assert client.get(f"/questions/{question.pk}/").status_code == 404
    assert "Saturday shift" not in client.get("/questions/").content.decode()


def test_export_needs_the_permission_and_is_logged(
    tenant_a: Tenant, committed: Any
) -> None:
    controller = tenant_a.client_for(tenant_a.controller)
    question = _ask(controller, committed)
    _reply_as_handset(controller, Message.objects.order_by("pk")[0], "yes")
    User.objects.filter(pk=tenant_a.controller.pk).update(can_export=False)
    refused = tenant_a.client_for(tenant_a.controller).get(
        f"/questions/{question.pk}/export/"
    )
    User.objects.filter(pk=tenant_a.controller.pk).update(can_export=True)

    response = tenant_a.client_for(tenant_a.controller).get(
        f"/questions/{question.pk}/export/"
    )
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))

    assert refused.status_code == 403
    assert rows[0] == ["number", "answer", "needs_attention", "answered_at"]
    assert sorted(row[1] for row in rows[1:]) == ["Yes", "not answered", "not answered"]
    assert rows[1][0].startswith("'+44")


def test_the_handsets_page_lists_only_the_organisations_own_texts(
    tenant_a: Tenant, tenant_b: Tenant, committed: Any
) -> None:
    _ask(tenant_b.client_for(tenant_b.controller), committed)
    theirs = Message.objects.first()
    assert theirs is not None
    client = tenant_a.client_for(tenant_a.controller)

    page = client.get("/simulator/").content.decode()
    response = client.post(f"/simulator/{theirs.pk}/reply/", {"body": "yes"})

    assert "Nothing has been sent through the simulator yet." in page
    assert response.status_code == 404
    assert not InboundMessage.objects.exists()


def test_the_handsets_page_is_gone_without_the_simulator(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_GATEWAY = "smpp"
    client = tenant_a.client_for(tenant_a.user)

    assert client.get("/simulator/").status_code == 404


def test_tmc_simulate_reply_answers_a_question(
    tenant_a: Tenant, committed: Any
) -> None:
    _ask(tenant_a.client_for(tenant_a.controller), committed, recipients=PEOPLE[0])
    out = StringIO()

    call_command(
        "simulate",
        "reply",
        "--from",
        PEOPLE[0],
        "--to",
        POOL[0],
        "--text",
        "YES please",
        stdout=out,
    )

    assert "matched" in out.getvalue()
    assert Answer.objects.get().value == "yes"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--from", "x", "--to", POOL[0], "--text", "hi"], "not a phone number"),
        (["--from", PEOPLE[0], "--to", POOL[0], "--text", " "], "Give the text"),
    ],
)
def test_tmc_simulate_reply_refuses_bad_input(
    db: None, arguments: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("simulate", "reply", *arguments)

    assert not InboundMessage.objects.exists()


def test_follow_ups_are_set_on_the_form_and_sent_after_answers(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)
    question = _ask(
        client,
        committed,
        auto_replies="no = Thanks for letting us know",
        limit_count="1",
        limit_value="Yes",
        limit_reply="You're booked",
        over_limit_reply="Sorry, it is filled",
        reminder_hours="4",
        reminder_text="Can you work Saturday?",
    )
    sent = list(Message.objects.order_by("pk"))
    with committed(execute=True):
        _reply_as_handset(client, sent[0], "yes")
        _reply_as_handset(client, sent[1], "Yes")
        _reply_as_handset(client, sent[2], "no")

    follow_ups = [m.body for m in Message.objects.order_by("pk")[3:]]
    assert follow_ups == [
        "You're booked",
        "Sorry, it is filled",
        "Thanks for letting us know",
    ]
    assert question.reminder_after is not None
    assert question.reminder_after.total_seconds() == 4 * 3600


def test_places_without_a_count_are_refused_next_to_the_field(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.controller)

    response = client.post("/questions/new/", _form(limit_value="yes"))

    assert 'id="id_limit_count_error"' in response.content.decode()
    assert "<details open>" in response.content.decode()
    assert not Message.objects.exists()


def test_the_author_is_warned_before_a_full_pool_closes_an_open_question(
    tenant_a: Tenant, committed: Any
) -> None:
    """With two reply numbers, a third open question to one person needs a yes."""
    client = tenant_a.client_for(tenant_a.controller)
    for title in ("First", "Second"):
        with committed(execute=True):
            client.post("/questions/new/", _form(title=title, recipients=PEOPLE[0]))

    warned = client.post("/questions/new/", _form(title="Third", recipients=PEOPLE[0]))
    with committed(execute=True):
        confirmed = client.post(
            "/questions/new/",
            _form(title="Third", recipients=PEOPLE[0], confirm_reuse="on"),
        )

    assert "1 of these people already have a question open" in warned.content.decode()
    assert 'type="checkbox" name="confirm_reuse"' in warned.content.decode()
    assert confirmed.status_code == 302
    assert Message.objects.count() == 3
    reused = Ticket.objects.select_related("question").get(
        closed_reason="number reused"
    )
    assert reused.question is not None
    assert reused.question.title == "First"


def _conversation_of(message: Message) -> Ticket:
    return Ticket.objects.get(message=message)


def test_a_conversation_threads_the_question_the_reply_and_a_reply_in_place(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)
    _ask(client, committed, recipients=PEOPLE[0])
    question_message = Message.objects.get()
    _reply_as_handset(client, question_message, "Sorry, I have a wedding")
    ticket = _conversation_of(question_message)

    inbox = client.get("/questions/inbox/").content.decode()
    page = client.get(f"/questions/conversations/{ticket.pk}/").content.decode()
    with committed(execute=True):
        replied = client.post(
            f"/questions/conversations/{ticket.pk}/", {"body": "No problem, thanks!"}
        )
    after = client.get("/questions/inbox/").content.decode()

    assert 'data-testid="unread">1<' in inbox
    assert page.index("Can you work Saturday?") < page.index("I have a wedding")
    assert replied.status_code == 302
    reply = Message.objects.order_by("pk").last()
    assert reply is not None
    assert (reply.body, reply.sender) == ("No problem, thanks!", POOL[0])
    assert reply.recipient == "+447400111111"
    assert 'data-testid="unread">0<' in after
    # The ticket was answered (closed); replying reopened it as a thread, so
    # their answer to the reply lands here too.
    ticket.refresh_from_db()
    assert (ticket.status, ticket.kind) == ("open", "conversation")
    _reply_as_handset(client, reply, "cheers")
    assert ticket.entries.count() == 4


def test_a_user_sees_only_their_own_conversations_and_managers_everyones(
    tenant_a: Tenant, committed: Any
) -> None:
    _ask(tenant_a.client_for(tenant_a.controller), committed, recipients=PEOPLE[0])
    ticket = _conversation_of(Message.objects.get())
    user = tenant_a.client_for(tenant_a.user)
    administrator = tenant_a.client_for(tenant_a.administrator)

    assert user.get(f"/questions/conversations/{ticket.pk}/").status_code == 404
    assert (
        f"conversation-{ticket.pk}"
        not in user.get("/questions/inbox/?all=1").content.decode()
    )
    assert (
        f"conversation-{ticket.pk}"
        not in administrator.get("/questions/inbox/").content.decode()
    )
    assert (
        f"conversation-{ticket.pk}"
        in administrator.get("/questions/inbox/?all=1").content.decode()
    )


def test_an_empty_reply_in_place_is_refused_next_to_the_field(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)
    _ask(client, committed, recipients=PEOPLE[0])
    ticket = _conversation_of(Message.objects.get())

    response = client.post(f"/questions/conversations/{ticket.pk}/", {"body": ""})

    assert 'id="id_body_error"' in response.content.decode()
    assert Message.objects.count() == 1


def test_the_results_filter_by_answer_and_keep_the_filter_while_polling(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.controller)
    question = _ask(client, committed)
    sent = list(Message.objects.order_by("pk"))
    _reply_as_handset(client, sent[0], "yes")
    _reply_as_handset(client, sent[1], "hmm")

    only_yes = client.get(f"/questions/{question.pk}/?answer=yes").content.decode()
    unread = client.get(f"/questions/{question.pk}/?answer=attention").content.decode()
    silent = client.get(f"/questions/{question.pk}/?answer=unanswered").content.decode()
    unknown = client.get(f"/questions/{question.pk}/?answer=bogus").content.decode()

    assert "+44 7400 111111" in only_yes
    assert "+44 7400 222222" not in only_yes
    assert "+44 7400 222222" in unread
    assert "+44 7400 333333" in silent
    assert "+44 7400 111111" not in silent
    assert all(number in unknown for number in ("111111", "222222", "333333"))
    assert f"/questions/{question.pk}/?answer=unanswered" in silent
