"""Sends to come: once at a date and time, or repeating; and quiet hours.

1. ``schedule_create`` checks what to send (the numbers, groups, sender and
   body a campaign takes, or one recipient) and when, and stores it sealed
   with its first ``next_run_at``. Credits, opt-outs and the author's limits
   are not checked here: they are checked when each occurrence runs.
2. ``schedules_due_run`` (every minute) claims each due occurrence with a
   conditional UPDATE, records it as a ``ScheduleRun``, sends it through
   ``campaign_send`` (or ``message_send`` for one recipient) as the author,
   and records the campaign or the refusal. A refused occurrence tells the
   author; the schedule goes on to its next run.
3. Quiet hours (the organisation's, local): an occurrence falling inside
   them is moved to their end, when it is computed and again when it runs.
   A campaign sent now inside them is held (``Campaign.hold_until``), and
   ``campaigns_release_held`` starts its dispatchers when they end.

Times follow the organisation's ``time_zone``; see ``tmc.lib.recurrence``
for what happens to local times that a clock change skips or repeats.

An occurrence is run at most once: it is claimed, and the schedule
advanced, before it is sent. A worker that stops between the claim and the
send leaves its run PENDING rather than sending it twice. A worker that was
down runs a missed occurrence once when it comes back, not every one missed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.audit.services import event_record
from tmc.identity.models import Permission, Role, User
from tmc.lib.segments import count_segments
from tmc.messaging import campaigns
from tmc.messaging.campaigns import (
    _address_book,
    _body_check,
    _recipients,
    campaign_send,
)
from tmc.messaging.models import Campaign, Message, Schedule, ScheduleRun
from tmc.messaging.services import _resolve_sender, message_compose, message_send
from tmc.messaging.trial import NOT_VERIFIED, unverified_numbers
from tmc.notifications.catalogue import Kind
from tmc.notifications.services import managers_of, notify

logger = logging.getLogger(__name__)

# Held texts released per run of the periodic task; the rest wait a minute.
RELEASE_ROWS = 1000

# Schedules run per pass of the minutely task; the rest wait a minute.
DUE_PER_PASS = 200
STARTED = "This schedule has started; it can no longer be changed."


@dataclass(frozen=True)
class When:
    """When a schedule runs: once at ``run_at``, or by a repeating rule.

    ``time_of_day`` and ``ends_on`` are local to the organisation.
    """

    repeat: Schedule.Repeat
    run_at: datetime | None = None
    time_of_day: time | None = None
    weekdays: frozenset[int] = field(default_factory=frozenset)
    day_of_month: int | None = None
    ends_on: date | None = None


# --- computing the next run ------------------------------------------------------


def _after_quiet(organisation: Organisation, at: datetime) -> datetime:
    return organisation.quiet_release(at) or at


def _following(schedule: Schedule, after: datetime) -> datetime | None:
    """The run after ``after`` by the schedule's rule, out of quiet hours."""
    rule = schedule.recurrence
    if rule is None:
        return None
    nominal = rule.next_after(after, schedule.organisation.zone)
    if nominal is None:
        return None
    return _after_quiet(schedule.organisation, nominal)


def _when_errors(
    organisation: Organisation, when: When, now: datetime
) -> dict[str, str]:
    """Problems with a time that cannot run, keyed by field."""
    errors: dict[str, str] = {}
    today = now.astimezone(organisation.zone).date()
    if when.repeat == Schedule.Repeat.ONCE:
        if when.run_at is None:
            errors["run_at"] = "Choose the date and time to send."
        elif when.run_at <= now:
            errors["run_at"] = "Choose a time in the future."
    else:
        if when.time_of_day is None:
            errors["time_of_day"] = "Choose the time of day to send."
        if when.repeat == Schedule.Repeat.WEEKLY and not when.weekdays:
            errors["weekdays"] = "Choose at least one day of the week."
        if when.repeat == Schedule.Repeat.MONTHLY and not (
            when.day_of_month and 1 <= when.day_of_month <= 31
        ):
            errors["day_of_month"] = "Choose a day of the month from 1 to 31."
        if when.ends_on is not None and when.ends_on < today:
            errors["ends_on"] = "The end date has passed."
    return errors


def _when_apply(schedule: Schedule, when: When) -> None:
    schedule.repeat = when.repeat
    once = when.repeat == Schedule.Repeat.ONCE
    schedule.run_at = when.run_at if once else None
    schedule.time_of_day = None if once else when.time_of_day
    schedule.weekdays = (
        sorted(when.weekdays) if when.repeat == Schedule.Repeat.WEEKLY else []
    )
    schedule.day_of_month = (
        when.day_of_month if when.repeat == Schedule.Repeat.MONTHLY else None
    )
    schedule.ends_on = None if once else when.ends_on


def _first_run(schedule: Schedule, now: datetime) -> datetime:
    if schedule.repeat == Schedule.Repeat.ONCE:
        assert schedule.run_at is not None
        return _after_quiet(schedule.organisation, schedule.run_at)
    first = _following(schedule, now)
    if first is None:
        raise ValidationError({"ends_on": "No run falls on or before the end date."})
    return first


# --- what to send ----------------------------------------------------------------


def _checked(
    user: User,
    *,
    when_errors: dict[str, str],
    single: bool,
    numbers_text: str,
    group_ids: Sequence[int],
    body: str,
    sender: str,
) -> None:
    """Check the recipients, body and sender now, with the time's problems.

    Raises ValidationError keyed by field. Opt-outs, credits and limits
    change before the send, so they are left to the send.
    """
    if single:
        try:
            message_compose(user=user, recipient=numbers_text, body=body, sender=sender)
        except ValidationError as exc:
            raise ValidationError({**exc.message_dict, **when_errors}) from exc
        if when_errors:
            raise ValidationError(when_errors)
        return
    if not user.has_permission(Permission.SEND_BULK):
        raise PermissionDenied("Your permissions do not include sending to many.")

    book, errors = _address_book(user, (), group_ids)
    errors.update(when_errors)
    kept, _ = _recipients(user, numbers_text, book)
    if not kept and not group_ids:
        errors.setdefault("numbers", "Enter at least one number, or choose a group.")
    elif not kept:
        errors.setdefault("numbers", "The groups chosen have no valid numbers.")
    elif len(unverified_numbers(user.organisation, kept)) == len(kept):
        # On the free trial; each run removes the unverified numbers again.
        errors.setdefault("numbers", NOT_VERIFIED)
    problem = _body_check(body, count_segments(body))
    if problem:
        errors["body"] = problem
    if _resolve_sender(user, sender.strip()) is None:
        errors["sender"] = (
            f"{sender!r} is not an approved sender for this account."
            if sender.strip()
            else "This account has no approved sender yet."
        )
    if errors:
        raise ValidationError(errors)


# --- create, change, cancel ------------------------------------------------------


def schedule_create(
    *,
    user: User,
    when: When,
    body: str,
    numbers_text: str = "",
    group_ids: Sequence[int] = (),
    sender: str = "",
    single: bool = False,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Schedule a send; raise ValidationError keyed by field, creating nothing.

    With ``single`` the send is one text to ``numbers_text`` (one number),
    as from the compose page; otherwise a campaign, which needs SEND_BULK.
    """
    now = now or timezone.now()
    organisation = user.organisation
    _checked(
        user,
        when_errors=_when_errors(organisation, when, now),
        single=single,
        numbers_text=numbers_text,
        group_ids=group_ids,
        body=body,
        sender=sender,
    )

    schedule = Schedule(
        organisation=organisation,
        created_by=user,
        single=single,
        group_ids=sorted(set(group_ids)),
        sender=sender.strip(),
    )
    _when_apply(schedule, when)
    schedule.next_run_at = _first_run(schedule, now)
    schedule.seal(numbers=numbers_text, body=body)
    with transaction.atomic():
        schedule.save()
        # Ids and the shape of the rule only: no body, no numbers.
        event_record(
            action="schedule.created",
            actor=user,
            target=schedule,
            details={
                "schedule": schedule.pk,
                "repeat": schedule.repeat,
                "groups": len(schedule.group_ids),
                "single": single,
            },
            request=request,
        )
    logger.info(
        "schedule created id=%s organisation_id=%s repeat=%s",
        schedule.pk,
        organisation.pk,
        schedule.repeat,
    )
    return schedule


def schedule_update(
    *,
    user: User,
    schedule: Schedule,
    when: When,
    body: str,
    numbers_text: str = "",
    group_ids: Sequence[int] = (),
    sender: str = "",
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Schedule:
    """Change a schedule until its first run starts; then refuse."""
    assert schedule.organisation_id == user.organisation_id
    now = now or timezone.now()
    if not schedule.is_changeable:
        raise ValidationError(STARTED)
    author = schedule.created_by
    _checked(
        author,
        when_errors=_when_errors(schedule.organisation, when, now),
        single=schedule.single,
        numbers_text=numbers_text,
        group_ids=group_ids,
        body=body,
        sender=sender,
    )

    with transaction.atomic():
        # Locked against the claim: the minutely run either claimed it
        # before this lock (status is RUNNING, refused below) or waits, and
        # then its conditional UPDATE on the old next_run_at finds nothing.
        locked = Schedule.objects.select_for_update().get(pk=schedule.pk)
        if not locked.is_changeable:
            raise ValidationError(STARTED)
        _when_apply(schedule, when)
        schedule.group_ids = sorted(set(group_ids))
        schedule.sender = sender.strip()
        schedule.next_run_at = _first_run(schedule, now)
        schedule.seal(numbers=numbers_text, body=body)
        schedule.save()
        event_record(
            action="schedule.updated",
            actor=user,
            target=schedule,
            details={"schedule": schedule.pk, "repeat": schedule.repeat},
            request=request,
        )
    return schedule


def schedule_cancel(
    *, user: User, schedule: Schedule, request: HttpRequest | None = None
) -> None:
    """Stop a schedule; an occurrence already sending finishes."""
    assert schedule.organisation_id == user.organisation_id
    with transaction.atomic():
        stopped = Schedule.objects.filter(
            pk=schedule.pk, status__in=Schedule.ACTIVE
        ).update(status=Schedule.Status.CANCELLED, next_run_at=None)
        if not stopped:
            raise ValidationError("This schedule has already finished.")
        event_record(
            action="schedule.cancelled",
            actor=user,
            target=schedule,
            details={"schedule": schedule.pk},
            request=request,
        )
    schedule.refresh_from_db()
    logger.info("schedule cancelled id=%s", schedule.pk)


def schedule_may_change(user: User, schedule: Schedule) -> bool:
    """Its author, a Controller or an Administrator may edit or cancel it."""
    return schedule.created_by_id == user.pk or user.role in (
        Role.CONTROLLER,
        Role.ADMINISTRATOR,
    )


# --- running ---------------------------------------------------------------------


def _occurrence_claim(
    schedule_id: int, due_at: datetime, now: datetime
) -> ScheduleRun | None:
    """Take this occurrence for this worker and advance the schedule.

    Returns None when another worker took it first, or when quiet hours
    (set since it was computed) move it on.
    """
    schedule = Schedule.objects.select_related("organisation").get(pk=schedule_id)
    unchanged = Schedule.objects.filter(
        pk=schedule_id, status__in=Schedule.ACTIVE, next_run_at=due_at
    )
    with transaction.atomic():
        held = schedule.organisation.quiet_release(now)
        if held is not None:
            unchanged.update(next_run_at=held)
            logger.info("schedule held for quiet hours id=%s", schedule_id)
            return None
        # The claim: a conditional UPDATE on the next_run_at this worker
        # read. Two workers that read the same due occurrence both try it;
        # the database applies one, and the other's WHERE no longer matches
        # (the row's next_run_at has moved on), so it sends nothing.
        claimed = unchanged.update(
            next_run_at=_following(schedule, now),
            status=Schedule.Status.RUNNING,
            updated_at=now,
        )
        if not claimed:
            return None
        return ScheduleRun.objects.create(
            organisation_id=schedule.organisation_id,
            schedule=schedule,
            due_at=due_at,
            started_at=now,
        )


def _reason(exc: ValidationError | PermissionDenied) -> str:
    if isinstance(exc, PermissionDenied):
        return str(exc) or "The author may no longer send to many."
    return " ".join(message for message in exc.messages)[:300]


def _occurrence_send(run: ScheduleRun) -> ScheduleRun.Outcome:
    schedule = Schedule.objects.select_related(
        "organisation", "created_by__organisation"
    ).get(pk=run.schedule_id)
    author = schedule.created_by
    try:
        if not author.is_active:
            raise ValidationError("The person who scheduled it can no longer sign in.")
        if schedule.single:
            run.message = message_send(
                user=author,
                recipient=schedule.numbers,
                body=schedule.body,
                sender=schedule.sender,
            )
        else:
            run.campaign = campaign_send(
                user=author,
                numbers_text=schedule.numbers,
                group_ids=schedule.group_ids,
                body=schedule.body,
                sender=schedule.sender,
            )
    except (ValidationError, PermissionDenied) as exc:
        run.outcome = ScheduleRun.Outcome.REFUSED
        run.reason = _reason(exc)
    else:
        run.outcome = ScheduleRun.Outcome.SENT

    with transaction.atomic():
        run.save(update_fields=["outcome", "reason", "campaign", "message"])
        if run.outcome == ScheduleRun.Outcome.REFUSED:
            _refusal_tell(schedule, run)
        # The last run of a schedule finishes it, unless it was cancelled
        # while this one was sending.
        Schedule.objects.filter(
            pk=schedule.pk,
            status=Schedule.Status.RUNNING,
            next_run_at__isnull=True,
        ).update(status=Schedule.Status.DONE)
    logger.info(
        "schedule run id=%s schedule_id=%s outcome=%s campaign_id=%s message_id=%s",
        run.pk,
        schedule.pk,
        run.outcome,
        run.campaign_id,
        run.message_id,
    )
    return ScheduleRun.Outcome(run.outcome)


def _refusal_tell(schedule: Schedule, run: ScheduleRun) -> None:
    author = schedule.created_by
    # Someone must hear: the managers, when the author has left.
    people = [author] if author.is_active else managers_of(schedule.organisation)
    local = run.due_at.astimezone(schedule.organisation.zone)
    notify(
        kind=Kind.SCHEDULE_REFUSED,
        recipients=people,
        context={"due_at": f"{local:%d %b %Y %H:%M}", "reason": run.reason},
        link=reverse("messaging:schedule", kwargs={"schedule_id": schedule.pk}),
    )


def schedules_due_run(*, now: datetime | None = None) -> int:
    """Run every occurrence due by ``now``; return how many this worker ran."""
    now = now or timezone.now()
    due = list(
        Schedule.objects.filter(status__in=Schedule.ACTIVE, next_run_at__lte=now)
        .order_by("next_run_at", "pk")
        .values_list("pk", "next_run_at")[:DUE_PER_PASS]
    )
    ran = 0
    for schedule_id, due_at in due:
        assert due_at is not None
        run = _occurrence_claim(schedule_id, due_at, now)
        if run is not None:
            _occurrence_send(run)
            ran += 1
    return ran


# --- quiet hours for campaigns sent now -------------------------------------------


def campaigns_release_held(*, now: datetime | None = None) -> int:
    """Start the dispatchers of campaigns whose quiet-hours hold has ended."""
    now = now or timezone.now()
    held = list(
        Campaign.objects.filter(
            status=Campaign.Status.QUEUED, hold_until__lte=now
        ).values_list("pk", "hold_until", "recipient_count")
    )
    released = 0
    for campaign_id, hold_until, recipients in held:
        # Cleared with a conditional UPDATE, so that of two workers releasing
        # at once only one starts the dispatchers.
        with transaction.atomic():
            if not Campaign.objects.filter(
                pk=campaign_id, hold_until=hold_until
            ).update(hold_until=None):
                continue
            dispatchers = min(
                campaigns.DISPATCHERS, -(-recipients // campaigns.DISPATCH_BATCH)
            )
            transaction.on_commit(partial(campaigns._enqueue, campaign_id, dispatchers))
        released += 1
        logger.info("campaign released after quiet hours id=%s", campaign_id)
    return released


def messages_release_held(*, now: datetime | None = None) -> int:
    """Queue for a worker the one-to-one texts whose quiet-hours hold has ended."""
    now = now or timezone.now()
    due = list(
        Message.objects.filter(
            status=Message.Status.QUEUED, hold_until__lte=now
        ).values_list("pk", flat=True)[:RELEASE_ROWS]
    )
    if not due:
        return 0
    with transaction.atomic():
        released = Message.objects.filter(
            pk__in=due, status=Message.Status.QUEUED, hold_until__lte=now
        ).update(hold_until=None)
        # Two workers releasing at once may both queue a text: its claim is
        # conditional, so the second dispatch finds it taken and does nothing.
        transaction.on_commit(partial(_dispatch_all, due))
    logger.info("messages released after quiet hours count=%s", released)
    return released


def _dispatch_all(message_ids: list[int]) -> None:
    from tmc.messaging.tasks import message_dispatch_task

    for message_id in message_ids:
        message_dispatch_task(message_id)
