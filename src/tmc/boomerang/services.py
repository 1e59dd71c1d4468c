"""Boomerang's rules: the number pool, tickets, questions and replies."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts.encryption import index
from tmc.accounts.models import Organisation
from tmc.audit.models import ActorKind
from tmc.audit.services import event_record, events_record
from tmc.boomerang.answers import LANGUAGES, option_keys, parse_answer
from tmc.boomerang.answers import Kind as AnswerKind
from tmc.boomerang.models import (
    Answer,
    ConversationEntry,
    KeywordRule,
    PoolOptOut,
    Question,
    Ticket,
    VirtualNumber,
)
from tmc.contacts.models import Group
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    contact_find,
    number_shown,
    reply_keyword,
)
from tmc.identity.models import Permission, User
from tmc.lib.phone import InvalidNumber, normalise_mobile
from tmc.lib.spreadsheet import csv_cell
from tmc.messaging.models import InboundMessage, Message
from tmc.messaging.services import message_compose, message_create

logger = logging.getLogger(__name__)

# Two workers choosing a number for one recipient at the same instant: the
# loser's insert meets the unique rule and it chooses again. Each round
# sees at least one more ticket, so a few rounds always suffice in practice.
ALLOCATION_ROUNDS = 5
POOL_OPTED_OUT = (
    "This number texted STOP to our shared numbers. It can be sent questions "
    "again only after it texts START."
)


class PoolEmpty(ValidationError):
    """No virtual number is available to send a question from."""


# --- the pool ------------------------------------------------------------------


def numbers_add(
    *,
    numbers: list[str],
    organisation: Organisation | None = None,
    actor_label: str = "system:command line",
    request: HttpRequest | None = None,
) -> list[VirtualNumber]:
    """Add numbers to the end of the shared pool, or dedicate them.

    ``actor_label`` names who did it in the activity log ("staff:jsmith").
    """
    normalised = []
    for raw in numbers:
        try:
            normalised.append(normalise_mobile(raw, "GB"))
        except InvalidNumber as exc:
            raise ValidationError({"numbers": str(exc)}) from exc
    with transaction.atomic():
        taken = set(
            VirtualNumber.objects.filter(number__in=normalised).values_list(
                "number", flat=True
            )
        )
        if taken:
            raise ValidationError(
                {"numbers": f"Already in a pool: {', '.join(sorted(taken))}."}
            )
        last = VirtualNumber.objects.filter(organisation=organisation).aggregate(
            last=Max("position")
        )["last"]
        start = 0 if last is None else last + 1
        added = [
            VirtualNumber.objects.create(
                number=number, organisation=organisation, position=start + offset
            )
            for offset, number in enumerate(dict.fromkeys(normalised))
        ]
        event_record(
            action="numbers.added",
            organisation=organisation,
            actor_label=actor_label,
            details={"count": len(added), "dedicated": organisation is not None},
            request=request,
        )
    logger.info(
        "virtual numbers added count=%s organisation_id=%s",
        len(added),
        organisation.pk if organisation else None,
    )
    return added


def number_retire(
    *,
    number: str,
    actor_label: str = "system:command line",
    request: HttpRequest | None = None,
) -> VirtualNumber:
    """Take a number out of its pool; its open tickets stay until they close."""
    with transaction.atomic():
        found = VirtualNumber.objects.active().filter(number=number).first()
        if found is None:
            raise ValidationError({"number": f"{number} is not an active number."})
        found.retired_at = timezone.now()
        found.save(update_fields=["retired_at"])
        event_record(
            action="numbers.retired",
            organisation=found.organisation,
            actor_label=actor_label,
            target=found,
            request=request,
        )
    return found


def pool_for(organisation: Organisation) -> list[VirtualNumber]:
    """The numbers an organisation's questions go out from, in pool order.

    Its dedicated numbers when it has any, the shared pool otherwise.
    """
    active = VirtualNumber.objects.active()
    dedicated = list(active.filter(organisation=organisation))
    return dedicated or list(active.filter(organisation__isnull=True))


def _open_tickets(route: str, pool: list[VirtualNumber]) -> list[Ticket]:
    return list(
        Ticket.objects.filter(
            recipient_route=route,
            status=Ticket.Status.OPEN,
            virtual_number__in=pool,
        ).order_by("opened_at", "id")
    )


def pool_is_full_for(organisation: Organisation, recipient: str) -> bool:
    """True when every number is in an open conversation with ``recipient``.

    Sending another question then closes the oldest of those conversations;
    the compose page warns before it happens.
    """
    pool = pool_for(organisation)
    if not pool:
        return False
    return len(_open_tickets(index(None, recipient), pool)) >= len(pool)


def _ticket_close(ticket: Ticket, reason: str) -> None:
    closed = Ticket.objects.filter(pk=ticket.pk, status=Ticket.Status.OPEN).update(
        status=Ticket.Status.CLOSED, closed_at=timezone.now(), closed_reason=reason
    )
    if closed:
        ticket.status = Ticket.Status.CLOSED
        ticket.closed_reason = reason
        logger.info("ticket closed id=%s reason=%s", ticket.pk, reason)


def ticket_open(
    *,
    organisation: Organisation,
    recipient: str,
    kind: Ticket.Kind = Ticket.Kind.SINGLE,
    closes_at: datetime | None = None,
    question: Question | None = None,
) -> Ticket:
    """Open a ticket on the first pool number free with ``recipient``.

    When every number is taken, the oldest open ticket with the recipient is
    closed and its number reused. Call inside the transaction that creates
    the ticket's message.
    """
    pool = pool_for(organisation)
    if not pool:
        raise PoolEmpty({"recipient": "No virtual number is available for replies."})
    route = index(None, recipient)
    for _ in range(ALLOCATION_ROUNDS):
        try:
            with transaction.atomic():
                busy = _open_tickets(route, pool)
                taken = {ticket.virtual_number_id for ticket in busy}
                free = [number for number in pool if number.pk not in taken]
                if free:
                    chosen = free[0]
                else:
                    oldest = busy[0]
                    _ticket_close(oldest, "number reused")
                    chosen = next(n for n in pool if n.pk == oldest.virtual_number_id)
                return Ticket.objects.create(
                    organisation=organisation,
                    virtual_number=chosen,
                    recipient_route=route,
                    kind=kind,
                    closes_at=closes_at,
                    question=question,
                )
        except IntegrityError:
            # Another worker opened a ticket on that number for this
            # recipient after we looked: look again.
            logger.info("virtual number taken concurrently, choosing again")
    raise PoolEmpty({"recipient": "The reply numbers are busy; try again."})


# --- questions -----------------------------------------------------------------


@dataclass(frozen=True)
class FollowUps:
    """What happens after an answer, and to those who do not answer."""

    auto_replies: dict[str, str] = field(default_factory=dict)
    limit_value: str = ""
    limit_count: int | None = None
    limit_reply: str = ""
    over_limit_reply: str = ""
    reminder_after: timedelta | None = None
    reminder_text: str = ""


def _follow_up_errors(
    follow_ups: FollowUps, kind: AnswerKind, options: list[str]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    values = set(answer_values(kind, options))
    unknown = sorted(set(follow_ups.auto_replies) - values)
    if unknown or (follow_ups.auto_replies and not values):
        offered = ", ".join(sorted(values))
        errors["auto_replies"] = (
            f"Auto-replies need answers the question offers ({offered})."
            if values
            else "Auto-replies need a yes/no or multiple-choice question."
        )
    if follow_ups.limit_count is not None:
        if follow_ups.limit_value not in values:
            errors["limit_value"] = "Choose the answer that takes a place."
        if (
            not follow_ups.limit_reply.strip()
            or not follow_ups.over_limit_reply.strip()
        ):
            errors["limit_reply"] = "Write both texts: for a place, and for too late."
    if follow_ups.reminder_after is not None and not follow_ups.reminder_text.strip():
        errors["reminder_text"] = "Write the reminder."
    return errors


def question_create(
    *,
    user: User,
    title: str,
    kind: AnswerKind,
    options: list[str] | None = None,
    language: str = "en",
    follow_ups: FollowUps | None = None,
) -> Question:
    follow_ups = follow_ups or FollowUps()
    errors: dict[str, str] = {}
    options = [option.strip() for option in options or [] if option.strip()]
    if not title.strip():
        errors["title"] = "Name the question, for its results page."
    if kind is AnswerKind.CHOICE:
        if len(options) < 2:
            errors["options"] = "Give at least two options."
        else:
            try:
                option_keys(options)
            except ValueError as exc:
                errors["options"] = str(exc)
    elif options:
        errors["options"] = "Only a multiple-choice question has options."
    if language not in LANGUAGES:
        errors["language"] = f"Choose one of {', '.join(LANGUAGES)}."
    errors.update(_follow_up_errors(follow_ups, kind, options))
    if errors:
        raise ValidationError(errors)
    return Question.objects.create(
        organisation=user.organisation,
        created_by=user,
        title=title.strip()[:120],
        kind=kind.value,
        options=options,
        language=language,
        auto_replies=follow_ups.auto_replies,
        limit_value=follow_ups.limit_value,
        limit_count=follow_ups.limit_count,
        limit_reply=follow_ups.limit_reply,
        over_limit_reply=follow_ups.over_limit_reply,
        reminder_after=follow_ups.reminder_after,
        reminder_text=follow_ups.reminder_text,
    )


def answer_values(kind: AnswerKind, options: list[str]) -> list[str]:
    """The values a clear answer can take, for follow-ups to key on."""
    if kind is AnswerKind.YES_NO:
        return ["yes", "no"]
    if kind is AnswerKind.CHOICE:
        return option_keys(options) if len(options) <= 26 else []
    return []


def _pool_opted_out(recipient: str) -> bool:
    return PoolOptOut.objects.filter(number_route=index(None, recipient)).exists()


def question_send(
    *,
    user: User,
    recipient: str,
    body: str,
    question: Question | None = None,
    kind: Ticket.Kind = Ticket.Kind.SINGLE,
    closes_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Message:
    """Send a text that expects a reply, from a pool number, with its ticket.

    The message, its ticket and its charge commit together or not at all.
    """
    if question is not None:
        assert question.organisation_id == user.organisation_id
    if kind == Ticket.Kind.DEADLINE and (
        closes_at is None or closes_at <= timezone.now()
    ):
        raise ValidationError({"closes_at": "Choose a deadline in the future."})
    composed = message_compose(
        user=user, recipient=recipient, body=body, sender_from_pool=True
    )
    uses_shared_pool = not any(n.organisation_id for n in pool_for(user.organisation))
    if uses_shared_pool and _pool_opted_out(composed.recipient):
        raise ValidationError({"recipient": POOL_OPTED_OUT})

    with transaction.atomic():
        ticket = ticket_open(
            organisation=user.organisation,
            recipient=composed.recipient,
            kind=kind,
            closes_at=closes_at,
            question=question,
        )
        message = message_create(
            user=user,
            composed=replace(composed, sender=ticket.virtual_number.number),
            request=request,
            details={
                "ticket": ticket.pk,
                "question": question.pk if question else None,
            },
        )
        ticket.message = message
        ticket.save(update_fields=["message"])
        _entry_add(ticket, message=message)
    logger.info(
        "question sent message_id=%s ticket_id=%s virtual_number_id=%s",
        message.pk,
        ticket.pk,
        ticket.virtual_number_id,
    )
    return message


# --- replies -------------------------------------------------------------------


# A reply's sender (by blind index) and the number it was sent to.
Pair = tuple[str, str]


@dataclass(frozen=True)
class ReplyRoute:
    """Where an inbound text belongs: its organisation, ticket and message."""

    organisation: Organisation | None
    ticket: Ticket | None
    message: Message | None


def tickets_open_locked(pairs: Collection[tuple[str, str]]) -> dict[Pair, Ticket]:
    """The open tickets of ``(sender blind index, our number)`` pairs, locked.

    One query for a whole batch of replies. The row locks (taken in id
    order, so two batches cannot each hold what the other waits for) make
    replies to one ticket take turns: a second reply waits for the first
    one's transaction, then sees the ticket as it left it.
    """
    if not pairs:
        return {}
    routes = {route for route, _ in pairs}
    numbers = {number for _, number in pairs}
    tickets = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related(
            "message__created_by", "organisation", "question", "virtual_number"
        )
        .filter(
            recipient_route__in=routes,
            virtual_number__number__in=numbers,
            status=Ticket.Status.OPEN,
        )
        .order_by("pk")
    )
    return {
        (ticket.recipient_route, ticket.virtual_number.number): ticket
        for ticket in tickets
    }


def reply_route_untracked(*, sender_route: str, recipient: str) -> ReplyRoute:
    """Where a reply that matches no open ticket belongs.

    The organisation that owns the number if it is dedicated, else the one
    that last sent to the sender from that number; else nobody (the
    provider's unmatched inbox).
    """
    last_sent = (
        Message.objects.select_related("organisation", "created_by")
        .filter(recipient_route=sender_route, sender=recipient)
        .order_by("-created_at", "-id")
        .first()
    )
    dedicated = (
        VirtualNumber.objects.select_related("organisation")
        .filter(number=recipient, organisation__isnull=False)
        .first()
    )
    if dedicated is not None:
        # A dedicated number's texts are its organisation's, history or not.
        owner = dedicated.organisation
        assert owner is not None
        if last_sent is not None and last_sent.organisation_id != owner.pk:
            last_sent = None
        return ReplyRoute(owner, None, last_sent)
    if last_sent is not None:
        return ReplyRoute(last_sent.organisation, None, last_sent)
    return ReplyRoute(None, None, None)


def pool_keyword_apply(*, sender: str, body: str) -> str | None:
    """STOP or START sent to a shared number outside any organisation."""
    keyword = reply_keyword(body)
    route = index(None, sender)
    if keyword == "stop":
        PoolOptOut.objects.get_or_create(number_route=route)
        event_record(
            action="optout.pool_added",
            actor_kind=ActorKind.SYSTEM,
            details={"source": "reply"},
        )
    elif keyword == "start":
        removed, _ = PoolOptOut.objects.filter(number_route=route).delete()
        if removed:
            event_record(
                action="optout.pool_lifted",
                actor_kind=ActorKind.SYSTEM,
                details={"source": "reply"},
            )
    return keyword


def answers_record(
    matched: Sequence[tuple[ReplyRoute, InboundMessage]],
) -> list[Answer]:
    """Thread replies into their tickets, read answers, close single tickets.

    For a batch of stored replies, in their order of arrival, in the
    transaction that stored them, with their tickets locked by
    ``tickets_open_locked``. Entries and answers are written with one insert
    each; follow-ups go one by one (each at most once per recipient); the
    activity events are recorded last, one batch per organisation, so each
    chain stays locked only until the commit.
    """
    on_ticket = [(route.ticket, inbound) for route, inbound in matched if route.ticket]
    ConversationEntry.objects.bulk_create(
        ConversationEntry(
            organisation_id=ticket.organisation_id, ticket=ticket, inbound=inbound
        )
        for ticket, inbound in on_ticket
    )
    answers = [
        _answer_read(ticket, inbound)
        for ticket, inbound in on_ticket
        if ticket.question is not None
    ]
    Answer.objects.bulk_create(answers)
    for answer in answers:
        question = answer.ticket.question
        assert question is not None
        if not answer.needs_attention:
            _follow_up(answer.ticket, question, answer)

    closing = {t.pk for t, _ in on_ticket if t.kind == Ticket.Kind.SINGLE}
    if closing:
        still_open = Ticket.objects.filter(pk__in=closing, status=Ticket.Status.OPEN)
        closed = still_open.update(
            status=Ticket.Status.CLOSED,
            closed_at=timezone.now(),
            closed_reason="answered",
        )
        logger.info("tickets closed count=%s reason=answered", closed)
        for ticket, _ in on_ticket:
            if ticket.pk in closing:
                ticket.status = Ticket.Status.CLOSED
                ticket.closed_reason = "answered"

    by_organisation: dict[int, list[Answer]] = {}
    for answer in answers:
        by_organisation.setdefault(answer.organisation_id, []).append(answer)
    for organisation_id in sorted(by_organisation):
        batch = by_organisation[organisation_id]
        events_record(
            action="answer.received",
            organisation=batch[0].ticket.organisation,
            actor_kind=ActorKind.SYSTEM,
            entries=[
                (
                    answer,
                    {
                        "question": answer.ticket.question_id,
                        "ticket": answer.ticket_id,
                        "needs_attention": answer.needs_attention,
                    },
                )
                for answer in batch
            ],
        )
    return answers


def _answer_read(ticket: Ticket, inbound: InboundMessage) -> Answer:
    question = ticket.question
    assert question is not None
    parsed = parse_answer(
        inbound.body,
        kind=AnswerKind(question.kind),
        options=list(question.options),
        language=question.language,
    )
    return Answer(
        organisation_id=ticket.organisation_id,
        ticket=ticket,
        inbound=inbound,
        value=parsed.value,
        needs_attention=parsed.needs_attention,
    )


def _follow_up(ticket: Ticket, question: Question, answer: Answer) -> None:
    """Send the answer's follow-up, once per recipient, in the reply's transaction.

    The ticket is locked (``reply_route``), so two replies from one person
    are followed up one after the other and only the first gets a text.
    For "the first N", the question's row is locked too: answers from
    different people to one question take their places one at a time, so
    no place is given twice and none beyond N.
    """
    if ticket.followed_up_at is not None:
        return
    if question.limit_count is None and not question.auto_replies:
        return
    text = ""
    if question.limit_count is not None and answer.value == question.limit_value:
        Question.objects.select_for_update().filter(pk=question.pk).first()
        taken = Ticket.objects.filter(question=question, place__isnull=False).count()
        if taken < question.limit_count:
            ticket.place = taken + 1
            text = question.limit_reply
        else:
            text = question.over_limit_reply
    else:
        text = str(question.auto_replies.get(answer.value, ""))
    ticket.followed_up_at = timezone.now()
    ticket.save(update_fields=["followed_up_at", "place"])
    if text:
        ticket_message_send(ticket=ticket, body=text, reason="follow-up")


def ticket_message_send(
    *,
    ticket: Ticket,
    body: str,
    reason: str,
    user: User | None = None,
    request: HttpRequest | None = None,
) -> Message | None:
    """Text the ticket's recipient from the ticket's own number.

    For follow-ups, reminders and replies in place: the recipient sees one
    conversation. Sent as ``user`` (the question's author when not given);
    a send the rules refuse (no credit, a limit, an opt-out) is logged and
    skipped, never allowed to undo the reply that caused it.
    """
    assert ticket.message is not None
    sender = user or ticket.message.created_by
    recipient = ticket.message.recipient
    try:
        with transaction.atomic():
            composed = message_compose(
                user=sender, recipient=recipient, body=body, sender_from_pool=True
            )
            message = message_create(
                user=sender,
                composed=replace(composed, sender=ticket.virtual_number.number),
                request=request,
                details={"ticket": ticket.pk, "reason": reason},
            )
            _entry_add(ticket, message=message)
    except ValidationError as exc:
        logger.warning(
            "ticket message not sent ticket_id=%s reason=%s problem=%s",
            ticket.pk,
            reason,
            "; ".join(exc.messages)[:200],
        )
        if user is not None:
            raise
        return None
    return message


def reminders_send(*, now: datetime | None = None) -> int:
    """Remind those who have not answered once their question's delay is up."""
    moment = now or timezone.now()
    due = (
        Ticket.objects.filter(
            status=Ticket.Status.OPEN,
            reminded_at__isnull=True,
            question__reminder_after__isnull=False,
            answers__isnull=True,
        )
        .select_related("question", "message", "virtual_number")
        .order_by("opened_at")
    )
    sent = 0
    for ticket in due:
        assert ticket.question is not None
        reminder_after = ticket.question.reminder_after
        assert reminder_after is not None
        if ticket.opened_at + reminder_after > moment:
            continue
        with transaction.atomic():
            # Claimed with a conditional UPDATE: of two workers running the
            # reminders at once, one sends each reminder.
            claimed = Ticket.objects.filter(
                pk=ticket.pk, reminded_at__isnull=True
            ).update(reminded_at=moment)
            if claimed and ticket_message_send(
                ticket=ticket, body=ticket.question.reminder_text, reason="reminder"
            ):
                sent += 1
    if sent:
        logger.info("reminders sent count=%s", sent)
    return sent


def tickets_expire(*, now: datetime | None = None) -> int:
    """Close deadline tickets whose time is up; return how many."""
    moment = now or timezone.now()
    closed = Ticket.objects.filter(
        status=Ticket.Status.OPEN,
        kind=Ticket.Kind.DEADLINE,
        closes_at__lte=moment,
    ).update(status=Ticket.Status.CLOSED, closed_at=moment, closed_reason="expired")
    if closed:
        logger.info("tickets expired count=%s", closed)
    return closed


# --- asking many, and the results ------------------------------------------------

MAX_RECIPIENTS = 1000
NOT_ANSWERED = "not answered"


def recipients_parse(text: str, organisation: Organisation) -> list[str]:
    """Numbers, one a line or separated by commas, as unique E.164 numbers.

    Refused whole, naming the lines, when any number is not a mobile: a
    question goes to exactly the people the author listed.
    """
    numbers: list[str] = []
    problems: list[str] = []
    entries = [e.strip() for line in text.splitlines() for e in line.split(",")]
    for position, entry in enumerate((e for e in entries if e), start=1):
        try:
            numbers.append(normalise_mobile(entry, organisation.default_region))
        except InvalidNumber as exc:
            problems.append(f"number {position}: {exc.reason}")
    if problems:
        raise ValidationError({"recipients": "Check " + "; ".join(problems[:10])})
    if not numbers:
        raise ValidationError({"recipients": "Give at least one mobile number."})
    unique = list(dict.fromkeys(numbers))
    if len(unique) > MAX_RECIPIENTS:
        raise ValidationError(
            {"recipients": f"At most {MAX_RECIPIENTS} people for one question."}
        )
    return unique


def questions_send(
    *,
    user: User,
    recipients: list[str],
    title: str,
    body: str,
    kind: AnswerKind,
    options: list[str] | None = None,
    language: str = "en",
    follow_ups: FollowUps | None = None,
    ticket_kind: Ticket.Kind = Ticket.Kind.SINGLE,
    closes_at: datetime | None = None,
    request: HttpRequest | None = None,
) -> Question:
    """Ask one question of several people: all are sent, or none is."""
    if len(recipients) > 1 and not user.has_permission(Permission.SEND_BULK):
        raise ValidationError(
            {"recipients": "Your permissions allow one recipient at a time."}
        )
    with transaction.atomic():
        question = question_create(
            user=user,
            title=title,
            kind=kind,
            options=options,
            language=language,
            follow_ups=follow_ups,
        )
        for recipient in recipients:
            question_send(
                user=user,
                recipient=recipient,
                body=body,
                question=question,
                kind=ticket_kind,
                closes_at=closes_at,
                request=request,
            )
    return question


def questions_for(user: User) -> QuerySet[Question]:
    """Questions the user may follow: their own, or all for managers."""
    questions = Question.objects.for_user(user)
    return questions if user.is_manager else questions.filter(created_by=user)


@dataclass(frozen=True)
class AnswerCount:
    value: str
    label: str
    count: int
    percent: int


@dataclass(frozen=True)
class RecipientRow:
    ticket: Ticket
    number: str
    value: str
    label: str
    needs_attention: bool
    answered_at: datetime | None


@dataclass(frozen=True)
class Results:
    question: Question
    counts: list[AnswerCount]
    rows: list[RecipientRow]
    needs_attention: int
    not_answered: int

    @property
    def sent(self) -> int:
        return len(self.rows)

    @property
    def still_open(self) -> bool:
        """Whether any answer can still arrive (the page keeps polling)."""
        return any(row.ticket.status == Ticket.Status.OPEN for row in self.rows)


def answer_labels(question: Question) -> dict[str, str]:
    """Each answer value with the words a person reads for it."""
    kind = AnswerKind(question.kind)
    if kind is AnswerKind.YES_NO:
        return {"yes": "Yes", "no": "No"}
    if kind is AnswerKind.CHOICE:
        options = list(question.options)
        return {
            key: f"{key}: {option}"
            for key, option in zip(option_keys(options), options, strict=True)
        }
    return {}


def question_results(question: Question, *, viewer: User) -> Results:
    """Who answered what, the counts per answer, and who has not answered.

    A person's answer is their latest clear one; a reply that needs
    attention counts only while they have given no clear answer.
    """
    tickets = list(
        question.tickets.select_related("message").prefetch_related("answers")
    )
    labels = answer_labels(question)
    tally: dict[str, int] = dict.fromkeys(labels, 0)
    rows = []
    attention = unanswered = 0
    for ticket in tickets:
        answers = list(ticket.answers.all())
        clear = [a for a in answers if not a.needs_attention]
        latest = clear[-1] if clear else (answers[-1] if answers else None)
        value = latest.value if latest else ""
        if latest is None:
            unanswered += 1
        elif latest.needs_attention:
            attention += 1
        elif value in tally or not labels:
            tally[value] = tally.get(value, 0) + 1
        number = ticket.message.recipient if ticket.message else ""
        rows.append(
            RecipientRow(
                ticket=ticket,
                number=number_shown(number, viewer) if number else "",
                value=value,
                label=labels.get(value, value) if latest else NOT_ANSWERED,
                needs_attention=bool(latest and latest.needs_attention),
                answered_at=latest.received_at if latest else None,
            )
        )
    peak = max(tally.values(), default=0)
    counts = [
        AnswerCount(
            value=value,
            label=labels.get(value, value or "Answered"),
            count=count,
            percent=round(100 * count / peak) if peak else 0,
        )
        for value, count in tally.items()
    ]
    return Results(question, counts, rows, attention, unanswered)


def question_results_export(
    question: Question, *, viewer: User, request: HttpRequest | None = None
) -> list[list[str]]:
    """The results as CSV rows; needs the export permission, and is logged."""
    if not viewer.has_permission(Permission.EXPORT):
        raise PermissionDenied("Your permissions do not include exporting.")
    results = question_results(question, viewer=viewer)
    event_record(
        action="answers.exported",
        actor=viewer,
        target=question,
        details={"rows": results.sent},
        request=request,
    )
    return [
        ["number", "answer", "needs_attention", "answered_at"],
        *(
            [
                csv_cell(row.number),
                csv_cell(row.label),
                "yes" if row.needs_attention else "",
                row.answered_at.isoformat() if row.answered_at else "",
            ]
            for row in results.rows
        ),
    ]


# --- conversations -----------------------------------------------------------------


def _entry_add(
    ticket: Ticket,
    *,
    message: Message | None = None,
    inbound: InboundMessage | None = None,
) -> ConversationEntry:
    return ConversationEntry.objects.create(
        organisation_id=ticket.organisation_id,
        ticket=ticket,
        message=message,
        inbound=inbound,
    )


def conversations_for(user: User, *, everyone: bool = False) -> QuerySet[Ticket]:
    """Tickets with their threads: the user's own, or the organisation's.

    ``everyone`` widens the list to the whole organisation, for managers;
    newest activity first, each with its count of unread replies.
    """
    tickets = Ticket.objects.for_user(user).filter(message__isnull=False)
    if not (everyone and user.is_manager):
        tickets = tickets.filter(message__created_by=user)
    return (
        tickets.select_related("message", "question", "virtual_number")
        .annotate(
            last_at=Max("entries__at"),
            unread=Count(
                "entries",
                filter=Q(entries__inbound__isnull=False, entries__read_at__isnull=True),
            ),
        )
        .order_by("-last_at", "-id")
    )


def unread_replies_count(user: User) -> int:
    """Replies in the user's own conversations that nobody has read yet."""
    return ConversationEntry.objects.filter(
        organisation_id=user.organisation_id,
        ticket__message__created_by=user,
        inbound__isnull=False,
        read_at__isnull=True,
    ).count()


def conversation_read(*, ticket: Ticket) -> list[ConversationEntry]:
    """The thread, oldest first, with its replies now marked read."""
    entries = list(
        ticket.entries.select_related("message", "inbound").order_by("at", "id")
    )
    ConversationEntry.objects.filter(
        ticket=ticket, inbound__isnull=False, read_at__isnull=True
    ).update(read_at=timezone.now())
    return entries


def reply_mark_read(*, entry: ConversationEntry) -> ConversationEntry:
    """Mark one reply read (the API's way; the inbox reads whole threads)."""
    assert entry.inbound_id is not None
    ConversationEntry.objects.filter(pk=entry.pk, read_at__isnull=True).update(
        read_at=timezone.now()
    )
    entry.refresh_from_db(fields=["read_at"])
    return entry


def conversation_reply(
    *, user: User, ticket: Ticket, body: str, request: HttpRequest | None = None
) -> Message:
    """Reply in place, from the ticket's number, reopening it if closed.

    A closed ticket is reopened as a conversation so the answer to this
    reply comes back to the thread; when the recipient now has another open
    ticket on that number, the reply is refused rather than crossing
    threads.
    """
    with transaction.atomic():
        locked = Ticket.objects.select_for_update().get(pk=ticket.pk)
        if locked.status == Ticket.Status.CLOSED:
            try:
                with transaction.atomic():
                    Ticket.objects.filter(pk=locked.pk).update(
                        status=Ticket.Status.OPEN,
                        kind=Ticket.Kind.CONVERSATION,
                        closed_at=None,
                        closed_reason="",
                    )
            except IntegrityError as exc:
                raise ValidationError(
                    {
                        "body": "This person has another conversation open on "
                        "that number now; reply there."
                    }
                ) from exc
            locked.refresh_from_db()
        message = ticket_message_send(
            ticket=locked, body=body, reason="reply", user=user, request=request
        )
        assert message is not None
    return message


# --- keyword rules -------------------------------------------------------------------

KEYWORD = re.compile(r"[A-Z0-9]{2,20}")


def keyword_rule_create(
    *,
    user: User,
    number: VirtualNumber,
    keyword: str,
    reply: str = "",
    group: Group | None = None,
    request: HttpRequest | None = None,
) -> KeywordRule:
    """A rule on one of the organisation's dedicated numbers."""
    word = keyword.strip().upper()
    errors: dict[str, str] = {}
    if number.organisation_id != user.organisation_id or number.retired_at:
        errors["virtual_number"] = "Choose one of your own numbers."
    if not KEYWORD.fullmatch(word):
        errors["keyword"] = "One word of 2 to 20 letters or digits."
    elif reply_keyword(word):
        errors["keyword"] = f"{word} is kept for opting out and in."
    elif KeywordRule.objects.filter(virtual_number=number, keyword=word).exists():
        errors["keyword"] = f"{word} already has a rule on this number."
    if not reply.strip() and group is None:
        errors["reply"] = "Give a reply, a group, or both."
    if group is not None and group.organisation_id != user.organisation_id:
        errors["group"] = "Choose one of your groups."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        rule = KeywordRule.objects.create(
            organisation=user.organisation,
            virtual_number=number,
            keyword=word,
            reply=reply.strip(),
            group=group,
            created_by=user,
        )
        event_record(
            action="keyword_rule.created",
            actor=user,
            target=rule,
            details={"keyword": word, "group": group.pk if group else None},
            request=request,
        )
    return rule


def keyword_rule_delete(
    *, user: User, rule: KeywordRule, request: HttpRequest | None = None
) -> None:
    with transaction.atomic():
        event_record(
            action="keyword_rule.deleted",
            actor=user,
            target=rule,
            details={"keyword": rule.keyword},
            request=request,
        )
        rule.delete()


def keyword_apply(
    *, organisation: Organisation, recipient: str, sender: str, body: str
) -> KeywordRule | None:
    """Act on a rule whose keyword starts a text to a dedicated number.

    Joining a group adds the sender to the address book if need be; the
    reply comes from the number the keyword was sent to. A reply the rules
    refuse (no credit, say) is logged and skipped; the text is still kept.
    """
    words = re.findall(r"[^\W_]+", body.upper())
    if not words:
        return None
    rule = (
        KeywordRule.objects.select_related("group", "created_by", "virtual_number")
        .filter(
            organisation=organisation,
            virtual_number__number=recipient,
            keyword=words[0],
        )
        .first()
    )
    if rule is None:
        return None
    if rule.group is not None:
        _group_join(rule, sender)
    if rule.reply:
        try:
            with transaction.atomic():
                composed = message_compose(
                    user=rule.created_by,
                    recipient=sender,
                    body=rule.reply,
                    sender_from_pool=True,
                )
                message_create(
                    user=rule.created_by,
                    composed=replace(composed, sender=rule.virtual_number.number),
                    details={"keyword_rule": rule.pk},
                )
        except ValidationError as exc:
            logger.warning(
                "keyword reply not sent rule_id=%s problem=%s",
                rule.pk,
                "; ".join(exc.messages)[:200],
            )
    logger.info("keyword rule applied rule_id=%s", rule.pk)
    return rule


def _group_join(rule: KeywordRule, sender: str) -> None:
    assert rule.group is not None
    with transaction.atomic():
        contact = contact_find(rule.created_by, sender)
        if contact is None:
            contact = contact_create(
                user=rule.created_by,
                number=sender,
                details=ContactDetails(),
                group_ids=[rule.group.pk],
            )
        else:
            contact.groups.add(rule.group)
