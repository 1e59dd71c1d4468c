"""Repeating local times and quiet hours through the clock changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tmc.lib.recurrence import (
    Frequency,
    QuietHours,
    Recurrence,
    _exists,
    local_instant,
)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = [LONDON, NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Tokyo")]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _daily(at: time, until: date | None = None) -> Recurrence:
    return Recurrence(Frequency.DAILY, at, until=until)


# --- the two transitions ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "wanted", "expected_utc"),
    [
        # London, 31 March 2024: 01:00 GMT jumps to 02:00 BST.
        (LONDON, date(2024, 3, 31), time(1, 30), _utc(2024, 3, 31, 1, 0)),
        # New York, 10 March 2024: 02:00 EST jumps to 03:00 EDT.
        (NEW_YORK, date(2024, 3, 10), time(2, 30), _utc(2024, 3, 10, 7, 0)),
    ],
)
def test_a_time_in_the_spring_gap_runs_at_the_first_instant_after_it(
    zone: ZoneInfo, day: date, wanted: time, expected_utc: datetime
) -> None:
    the_day_before = datetime.combine(day - timedelta(days=1), time(12), zone)

    runs = _daily(wanted).next_after(the_day_before, zone)

    assert runs == expected_utc
    assert runs is not None
    assert runs.astimezone(zone).time() == time(3 if zone is NEW_YORK else 2)


@pytest.mark.parametrize(
    ("zone", "day", "first_utc", "second_utc"),
    [
        # London, 27 October 2024: 01:30 happens in BST, then again in GMT.
        (LONDON, date(2024, 10, 27), _utc(2024, 10, 27, 0, 30), _utc(2024, 10, 27, 1, 30)),  # noqa: E501
        # New York, 3 November 2024: 01:30 EDT, then 01:30 EST.
        (NEW_YORK, date(2024, 11, 3), _utc(2024, 11, 3, 5, 30), _utc(2024, 11, 3, 6, 30)),  # noqa: E501
    ],
)  # fmt: skip
def test_an_ambiguous_autumn_time_runs_once_at_its_first_occurrence(
    zone: ZoneInfo, day: date, first_utc: datetime, second_utc: datetime
) -> None:
    rule = _daily(time(1, 30))
    the_day_before = datetime.combine(day - timedelta(days=1), time(12), zone)

    first = rule.next_after(the_day_before, zone)
    after_it = rule.next_after(first, zone) if first else None

    assert first == first_utc
    assert after_it is not None
    assert after_it != second_utc
    assert after_it.astimezone(zone).date() == day + timedelta(days=1)
    assert after_it.astimezone(zone).time() == time(1, 30)


def test_a_daily_time_keeps_its_wall_clock_across_the_change() -> None:
    rule = _daily(time(9))
    start = _utc(2024, 3, 29, 12)
    runs: list[datetime] = []
    for _ in range(4):
        found = rule.next_after(runs[-1] if runs else start, LONDON)
        assert found is not None
        runs.append(found)

    assert [r.astimezone(LONDON).time() for r in runs] == [time(9)] * 4
    assert [r.hour for r in runs] == [9, 8, 8, 8]  # UTC: GMT on the 30th, then BST


# --- the rules ------------------------------------------------------------------


def test_weekly_runs_on_the_chosen_weekdays_only() -> None:
    rule = Recurrence(Frequency.WEEKLY, time(9), weekdays=frozenset({0, 4}))
    found = []
    at = datetime(2025, 6, 1, 12, tzinfo=LONDON)  # a Sunday
    for _ in range(4):
        nxt = rule.next_after(at, LONDON)
        assert nxt is not None
        found.append(nxt.astimezone(LONDON).date())
        at = nxt

    assert found == [
        date(2025, 6, 2),
        date(2025, 6, 6),
        date(2025, 6, 9),
        date(2025, 6, 13),
    ]


def test_monthly_on_the_31st_runs_on_each_months_last_day() -> None:
    rule = Recurrence(Frequency.MONTHLY, time(10), day_of_month=31)
    found = []
    at = datetime(2024, 1, 1, tzinfo=LONDON)
    for _ in range(4):
        nxt = rule.next_after(at, LONDON)
        assert nxt is not None
        found.append(nxt.astimezone(LONDON).date())
        at = nxt

    assert found == [
        date(2024, 1, 31),
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
    ]


def test_nothing_runs_after_the_end_date() -> None:
    rule = _daily(time(9), until=date(2025, 6, 2))

    last = rule.next_after(datetime(2025, 6, 1, 12, tzinfo=LONDON), LONDON)
    after = rule.next_after(last, LONDON) if last else None

    assert last == datetime(2025, 6, 2, 9, tzinfo=LONDON)
    assert after is None


def test_the_rules_read_as_words() -> None:
    weekly = Recurrence(
        Frequency.WEEKLY, time(9), weekdays=frozenset({4, 0}), until=date(2025, 12, 31)
    )

    assert weekly.describe() == "Every Monday and Friday at 09:00 until 31 Dec 2025"
    assert _daily(time(7, 5)).describe() == "Every day at 07:05"
    assert (
        Recurrence(Frequency.MONTHLY, time(10), day_of_month=31).describe()
        == "Monthly on day 31 at 10:00 (or the month's last day)"
    )


# --- properties -----------------------------------------------------------------

instants = st.datetimes(
    min_value=_utc(2020, 1, 1).replace(tzinfo=None),
    max_value=_utc(2035, 12, 31).replace(tzinfo=None),
    timezones=st.just(UTC),
)
times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 1, 15, 30, 45, 59]))
rules = st.one_of(
    st.builds(Recurrence, st.just(Frequency.DAILY), times),
    st.builds(
        Recurrence,
        st.just(Frequency.WEEKLY),
        times,
        weekdays=st.frozensets(st.integers(0, 6), min_size=1),
    ),
    st.builds(
        Recurrence,
        st.just(Frequency.MONTHLY),
        times,
        day_of_month=st.integers(1, 31),
    ),
)


@settings(max_examples=300, deadline=None)
@given(rule=rules, now=instants, zone=st.sampled_from(ZONES))
def test_the_next_run_is_after_now_at_the_wanted_wall_time_when_it_exists(
    rule: Recurrence, now: datetime, zone: ZoneInfo
) -> None:
    found = rule.next_after(now, zone)

    assert found is not None
    assert found > now
    local = found.astimezone(zone)
    wanted = datetime.combine(local.date(), rule.at, tzinfo=zone)
    if _exists(wanted):
        assert local.replace(tzinfo=None) == wanted.replace(tzinfo=None)
        assert local.fold == 0 or not _exists(local.replace(fold=0))
    else:
        # A gap: the first instant after it, within the gap's length.
        assert local.replace(tzinfo=None) > wanted.replace(tzinfo=None)
        assert local.replace(tzinfo=None) - wanted.replace(tzinfo=None) <= timedelta(
            hours=1
        )


@settings(max_examples=200, deadline=None)
@given(now=instants, at=times, zone=st.sampled_from(ZONES))
def test_a_daily_rule_skips_no_day(now: datetime, at: time, zone: ZoneInfo) -> None:
    found = _daily(at).next_after(now, zone)

    assert found is not None
    assert found - now <= timedelta(hours=25)


@settings(max_examples=200, deadline=None)
@given(day=st.dates(date(2020, 1, 1), date(2035, 12, 31)), at=times)
def test_every_local_instant_is_at_or_after_its_wall_time(day: date, at: time) -> None:
    for zone in ZONES:
        found = local_instant(day, at, zone).astimezone(zone)
        assert found.replace(tzinfo=None) >= datetime.combine(day, at)


# --- quiet hours ----------------------------------------------------------------

NIGHT = QuietHours(time(21), time(8))


def _london(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=LONDON)


@pytest.mark.parametrize(
    ("at", "released"),
    [
        (_london(10, 20, 59), None),
        (_london(10, 21), _london(11, 8)),
        (_london(10, 23, 30), _london(11, 8)),
        (_london(11, 0, 15), _london(11, 8)),
        (_london(11, 7, 59), _london(11, 8)),
        (_london(11, 8), None),
    ],
)
def test_quiet_hours_across_midnight_hold_until_the_morning(
    at: datetime, released: datetime | None
) -> None:
    assert NIGHT.release(at, LONDON) == released


def test_quiet_hours_within_one_day() -> None:
    lunch = QuietHours(time(12), time(14))

    assert lunch.release(datetime(2025, 6, 10, 13, tzinfo=LONDON), LONDON) == (
        datetime(2025, 6, 10, 14, tzinfo=LONDON)
    )
    assert lunch.release(datetime(2025, 6, 10, 23, tzinfo=LONDON), LONDON) is None


def test_quiet_hours_over_the_spring_change_end_at_the_same_wall_time() -> None:
    # 21:00 GMT on Saturday to 08:00 BST on Sunday: ten hours, not eleven.
    at = datetime(2024, 3, 30, 22, tzinfo=LONDON)

    found = NIGHT.release(at, LONDON)

    assert found == _utc(2024, 3, 31, 7)


def test_quiet_hours_ending_in_the_gap_end_when_the_gap_does() -> None:
    early = QuietHours(time(23), time(2, 30))

    found = early.release(datetime(2024, 3, 9, 23, 30, tzinfo=NEW_YORK), NEW_YORK)

    assert found == datetime(2024, 3, 10, 3, tzinfo=NEW_YORK)


def test_quiet_hours_ending_in_the_autumn_repeat_end_at_its_first_occurrence() -> None:
    early = QuietHours(time(0), time(1, 30))
    in_first_hour = _utc(2024, 10, 27, 0, 10)  # 01:10 BST
    in_repeated_hour = _utc(2024, 10, 27, 1, 10)  # 01:10 GMT, after 01:30 BST

    assert early.release(in_first_hour, LONDON) == _utc(2024, 10, 27, 0, 30)
    assert early.release(in_repeated_hour, LONDON) is None
