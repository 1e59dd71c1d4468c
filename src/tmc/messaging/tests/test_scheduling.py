"""Scheduled sends, quiet hours, and their pages."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection

from tmc.accounts.models import Organisation
from tmc.identity.models import User
from tmc.messaging import campaigns, scheduling
from tmc.messaging.campaigns import campaign_dispatch_batch, campaign_preview
from tmc.messaging.models import Campaign, Message, Schedule, ScheduleRun
from tmc.messaging.scheduling import (
    When,
    campaigns_release_held,
    schedule_cancel,
    schedule_create,
    schedule_update,
    schedules_due_run,
)
from tmc.notifications.models import Notification
from tmc.testing import Tenant, make_tenant

NOW = datetime(2025, 6, 10, 12, tzinfo=UTC)  # 13:00 in London
ONCE = Schedule.Repeat.ONCE


def _once(at: datetime) -> When:
    return When(repeat=ONCE, run_at=at)


def _schedule(tenant: Tenant, when: When, **kwargs: Any) -> Schedule:
    values: dict[str, Any] = {"numbers_text": "07400 000001\n07400 000002"}
    values.update(kwargs)
    return schedule_create(user=tenant.user, when=when, body="Hello", now=NOW, **values)


def _quiet(organisation: Organisation, start: time, end: time) -> None:
    Organisation.objects.filter(pk=organisation.pk).update(
        quiet_start=start, quiet_end=end
    )


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Campaigns are queued, not dispatched: these tests are about when.
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)


# --- creating ---------------------------------------------------------------------


def test_a_one_off_send_is_due_at_its_time(tenant_a: Tenant) -> None:
    schedule = _schedule(tenant_a, _once(NOW + timedelta(hours=2)))

    assert schedule.next_run_at == NOW + timedelta(hours=2)
    assert schedule.status == Schedule.Status.SCHEDULED
    assert schedule.numbers == "07400 000001\n07400 000002"
    assert "07400" not in schedule.numbers_sealed
    assert "Hello" not in schedule.body_sealed


def test_a_time_in_the_past_is_refused_by_its_field(tenant_a: Tenant) -> None:
    with pytest.raises(ValidationError) as caught:
        _schedule(tenant_a, _once(NOW - timedelta(minutes=1)))

    assert "run_at" in caught.value.message_dict
    assert not Schedule.objects.exists()


def test_bad_recipients_body_and_weekdays_are_each_refused_by_field(
    tenant_a: Tenant,
) -> None:
    with pytest.raises(ValidationError) as caught:
        schedule_create(
            user=tenant_a.user,
            when=When(repeat=Schedule.Repeat.WEEKLY, time_of_day=time(9)),
            numbers_text="not a number",
            body="",
            now=NOW,
        )

    assert set(caught.value.message_dict) == {"numbers", "body", "weekdays"}


def test_a_daily_send_is_due_at_the_local_time_in_the_organisations_zone(
    tenant_a: Tenant,
) -> None:
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(
        time_zone="America/New_York"
    )
    tenant_a.user.organisation.refresh_from_db()

    schedule = _schedule(
        tenant_a, When(repeat=Schedule.Repeat.DAILY, time_of_day=time(9))
    )

    # NOW is 08:00 in New York: 09:00 EDT the same day.
    assert schedule.next_run_at == datetime(2025, 6, 10, 13, tzinfo=UTC)


# --- running ---------------------------------------------------------------------


def test_a_due_send_goes_as_a_campaign_of_its_author_and_finishes(
    tenant_a: Tenant,
) -> None:
    schedule = _schedule(tenant_a, _once(NOW + timedelta(minutes=5)))

    assert schedules_due_run(now=NOW) == 0
    assert schedules_due_run(now=NOW + timedelta(minutes=5)) == 1

    run = ScheduleRun.objects.get()
    assert run.outcome == ScheduleRun.Outcome.SENT
    assert run.campaign is not None
    assert run.campaign.created_by == tenant_a.user
    assert run.campaign.recipient_count == 2
    schedule.refresh_from_db()
    assert (schedule.status, schedule.next_run_at) == (Schedule.Status.DONE, None)
    assert schedules_due_run(now=NOW + timedelta(hours=1)) == 0


def test_a_daily_send_moves_to_the_next_day_after_each_run(
    tenant_a: Tenant,
) -> None:
    daily = When(
        repeat=Schedule.Repeat.DAILY, time_of_day=time(14), ends_on=date(2025, 6, 11)
    )
    schedule = _schedule(tenant_a, daily)
    first = schedule.next_run_at
    assert first == datetime(2025, 6, 10, 13, tzinfo=UTC)  # 14:00 BST

    schedules_due_run(now=first)
    schedule.refresh_from_db()
    assert schedule.status == Schedule.Status.RUNNING
    assert schedule.next_run_at == first + timedelta(days=1)
    assert not schedule.is_changeable

    schedules_due_run(now=first + timedelta(days=1))
    finished = Schedule.objects.get(pk=schedule.pk)
    assert (finished.status, finished.next_run_at) == (Schedule.Status.DONE, None)
    assert ScheduleRun.objects.filter(outcome="sent").count() == 2


def test_one_recipient_goes_as_one_message(tenant_a: Tenant) -> None:
    _schedule(
        tenant_a, _once(NOW + timedelta(minutes=1)), numbers_text="07400 000009"
    ).__class__.objects.update(single=True)

    schedules_due_run(now=NOW + timedelta(minutes=1))

    run = ScheduleRun.objects.get()
    assert run.message is not None
    assert run.message.recipient == "+447400000009"
    assert run.campaign is None


def test_a_run_without_credit_is_recorded_and_the_author_told(
    tenant_a: Tenant,
) -> None:
    schedule = _schedule(
        tenant_a, When(repeat=Schedule.Repeat.DAILY, time_of_day=time(14))
    )
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(credit_balance=1)

    schedules_due_run(now=schedule.next_run_at)

    run = ScheduleRun.objects.get()
    assert run.outcome == ScheduleRun.Outcome.REFUSED
    assert run.reason == "This needs 2 credits and the account has 1."
    assert not Campaign.objects.exists()
    notice = Notification.objects.get(kind="schedule_refused")
    assert notice.recipient == tenant_a.user
    schedule.refresh_from_db()
    assert schedule.next_run_at is not None
    assert schedule.status == Schedule.Status.RUNNING


def test_the_same_occurrence_is_claimed_once(tenant_a: Tenant) -> None:
    schedule = _schedule(tenant_a, _once(NOW + timedelta(minutes=1)))
    due = schedule.next_run_at
    assert due is not None

    first = scheduling._occurrence_claim(schedule.pk, due, due)
    second = scheduling._occurrence_claim(schedule.pk, due, due)

    assert first is not None
    assert second is None
    assert ScheduleRun.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_run_an_occurrence_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)
    tenant = make_tenant("Umbrella")
    schedule = _schedule(tenant, _once(NOW + timedelta(minutes=1)))
    start = threading.Barrier(2)
    counts: list[int] = []

    def work() -> None:
        try:
            start.wait()
            counts.append(schedules_due_run(now=NOW + timedelta(minutes=1)))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(counts) == [0, 1]
    assert ScheduleRun.objects.filter(schedule=schedule).count() == 1
    assert Campaign.objects.count() == 1


# --- changing --------------------------------------------------------------------


def test_a_schedule_can_change_until_it_starts(tenant_a: Tenant) -> None:
    schedule = _schedule(tenant_a, _once(NOW + timedelta(hours=1)))

    schedule_update(
        user=tenant_a.user,
        schedule=schedule,
        when=_once(NOW + timedelta(hours=3)),
        numbers_text="07400 000003",
        body="Changed",
        now=NOW,
    )
    schedule.refresh_from_db()
    assert schedule.next_run_at == NOW + timedelta(hours=3)
    assert schedule.body == "Changed"

    schedules_due_run(now=NOW + timedelta(hours=3))
    schedule.refresh_from_db()
    with pytest.raises(ValidationError, match="has started"):
        schedule_update(
            user=tenant_a.user,
            schedule=schedule,
            when=_once(NOW + timedelta(hours=5)),
            numbers_text="07400 000003",
            body="Again",
            now=NOW,
        )


def test_a_cancelled_schedule_never_runs(tenant_a: Tenant) -> None:
    schedule = _schedule(tenant_a, _once(NOW + timedelta(hours=1)))

    schedule_cancel(user=tenant_a.user, schedule=schedule)

    assert schedules_due_run(now=NOW + timedelta(days=1)) == 0
    assert schedule.status == Schedule.Status.CANCELLED
    with pytest.raises(ValidationError):
        schedule_cancel(user=tenant_a.user, schedule=schedule)


# --- quiet hours ------------------------------------------------------------------


def test_a_schedule_in_quiet_hours_runs_when_they_end(tenant_a: Tenant) -> None:
    _quiet(tenant_a.organisation, time(21), time(8))
    tenant_a.user.organisation.refresh_from_db()

    at_22 = datetime(2025, 6, 10, 21, tzinfo=UTC)  # 22:00 BST
    schedule = _schedule(tenant_a, _once(at_22))

    assert schedule.next_run_at == datetime(2025, 6, 11, 7, tzinfo=UTC)  # 08:00 BST


def test_quiet_hours_set_after_scheduling_hold_the_run(tenant_a: Tenant) -> None:
    at_22 = datetime(2025, 6, 10, 21, tzinfo=UTC)
    schedule = _schedule(tenant_a, _once(at_22))
    _quiet(tenant_a.organisation, time(21), time(8))

    assert schedules_due_run(now=at_22) == 0

    schedule.refresh_from_db()
    assert schedule.next_run_at == datetime(2025, 6, 11, 7, tzinfo=UTC)
    assert schedule.status == Schedule.Status.SCHEDULED
    assert schedules_due_run(now=schedule.next_run_at) == 1


def test_quiet_hours_across_the_autumn_change_end_at_local_eight(
    tenant_a: Tenant,
) -> None:
    _quiet(tenant_a.organisation, time(21), time(8))
    tenant_a.user.organisation.refresh_from_db()
    saturday_22 = datetime(2025, 10, 25, 21, tzinfo=UTC)  # 22:00 BST

    schedule = schedule_create(
        user=tenant_a.user,
        when=_once(saturday_22),
        numbers_text="07400 000001",
        body="Hi",
        now=saturday_22 - timedelta(days=1),
    )

    assert schedule.next_run_at == datetime(2025, 10, 26, 8, tzinfo=UTC)  # 08:00 GMT


def test_a_campaign_sent_in_quiet_hours_is_held_until_they_end(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch, committed: Any
) -> None:
    started: list[int] = []
    monkeypatch.setattr(campaigns, "_enqueue", lambda c, d: started.append(c))
    now = datetime.now(UTC)
    local_now = now.astimezone(tenant_a.organisation.zone)
    start = (local_now - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local_now + timedelta(hours=1)).time().replace(second=0, microsecond=0)
    _quiet(tenant_a.organisation, start, end)
    user = User.objects.get(pk=tenant_a.user.pk)

    preview = campaign_preview(user=user, numbers_text="07400 000001", body="Hi")
    with committed(execute=True):
        campaign = campaigns.campaign_send(
            user=user, numbers_text="07400 000001", body="Hi"
        )

    assert preview.hold_until is not None
    assert campaign.hold_until is not None
    assert started == []
    assert campaign_dispatch_batch(campaign_id=campaign.pk) == 0
    assert Message.objects.get().status == Message.Status.QUEUED

    with committed(execute=True):
        assert campaigns_release_held(now=campaign.hold_until) == 1
    assert started == [campaign.pk]
    assert campaigns_release_held(now=campaign.hold_until) == 0


# --- pages -----------------------------------------------------------------------


def test_the_send_to_many_page_schedules_a_send_and_lists_it(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)
    later = datetime.now(UTC).astimezone(tenant_a.organisation.zone) + timedelta(days=2)

    response = client.post(
        "/messages/bulk/",
        {
            "numbers": "07400 000001",
            "sender": "AcmeAlerts",
            "body": "Tomorrow's offer",
            "timing": "at",
            "run_at": f"{later:%Y-%m-%dT%H:%M}",
            "send": "1",
        },
    )

    schedule = Schedule.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/messages/scheduled/{schedule.pk}/"
    assert not Campaign.objects.exists()
    listed = client.get("/messages/scheduled/")
    assert f"{later:%H:%M}" in listed.content.decode()
    assert f'id="schedule-{schedule.pk}"' in listed.content.decode()


def test_the_page_keeps_input_and_shows_a_missing_weekday_by_its_field(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        "/messages/bulk/",
        {
            "numbers": "07400 000001",
            "sender": "AcmeAlerts",
            "body": "Weekly news",
            "timing": "repeat",
            "repeat": "weekly",
            "time_of_day": "09:00",
            "send": "1",
        },
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_weekdays_error"' in page
    assert "Weekly news" in page
    assert not Schedule.objects.exists()


def test_a_schedule_is_edited_then_cancelled_through_its_pages(
    tenant_a: Tenant,
) -> None:
    schedule = _schedule(tenant_a, _once(datetime.now(UTC) + timedelta(days=1)))
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        f"/messages/scheduled/{schedule.pk}/edit/",
        {
            "numbers": "07400 000005",
            "sender": "AcmeAlerts",
            "body": "Edited",
            "timing": "repeat",
            "repeat": "monthly",
            "day_of_month": "31",
            "time_of_day": "10:00",
        },
    )
    assert response.status_code == 302
    schedule = Schedule.objects.get(pk=schedule.pk)
    assert (schedule.repeat, schedule.day_of_month) == ("monthly", 31)
    assert schedule.body == "Edited"
    detail = client.get(f"/messages/scheduled/{schedule.pk}/").content.decode()
    assert "Monthly on day 31 at 10:00" in detail

    client.post(f"/messages/scheduled/{schedule.pk}/cancel/")
    schedule.refresh_from_db()
    assert schedule.status == Schedule.Status.CANCELLED


def test_another_user_may_not_cancel_someone_elses_schedule(
    tenant_a: Tenant,
) -> None:
    schedule = schedule_create(
        user=tenant_a.administrator,
        when=_once(datetime.now(UTC) + timedelta(days=1)),
        numbers_text="07400 000001",
        body="Hi",
    )
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(f"/messages/scheduled/{schedule.pk}/cancel/")

    assert response.status_code == 403
    schedule.refresh_from_db()
    assert schedule.status == Schedule.Status.SCHEDULED
