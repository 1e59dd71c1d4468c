"""Local wall-clock times, repeating rules and quiet hours, safe across DST.

Everything here takes and returns aware datetimes and works in the zone it
is given (an organisation's), so "every day at 09:00" stays at 09:00 local
through the clock changes. Two local times need a rule of their own:

- A time in a spring-forward gap (01:30 in London on the last Sunday of
  March) does not exist. It resolves to the first valid instant after it:
  the end of the gap (02:00 BST).
- A time in an autumn fall-back (01:30 in London on the last Sunday of
  October) happens twice. It resolves to the first occurrence (01:30 BST),
  and the second is never used, so a daily rule runs once that day.

No Django here: the scheduling services call these with the organisation's
zone and "now".
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


WEEKDAY_NAMES = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)


def _exists(local: datetime) -> bool:
    """Whether a naive-wall-time-with-zone survives a round trip through UTC."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant ``day`` at ``at`` happens in ``zone``, by the rules above.

    Returned in UTC: datetimes sharing one zone compare by wall time,
    ignoring ``fold``, which is wrong for exactly the hours this is about.
    """
    wanted = datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=zone)
    if _exists(wanted):
        return wanted.astimezone(UTC)
    # In a gap: fold=1 reads the wall time with the offset in force after
    # the change, which lands before the change; fold=0 with the offset
    # before, which lands after it. The change itself lies between the two:
    # find the first second with the new offset.
    early = int(wanted.replace(fold=1).astimezone(UTC).timestamp())
    late = int(wanted.astimezone(UTC).timestamp())
    after = wanted.astimezone(UTC).astimezone(zone).utcoffset()
    while late - early > 1:
        middle = (early + late) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == after:
            late = middle
        else:
            early = middle
    return datetime.fromtimestamp(late, UTC)


@dataclass(frozen=True)
class Recurrence:
    """A repeating local time: daily, on weekdays, or on a day of the month.

    ``weekdays`` are 0 (Monday) to 6; ``day_of_month`` 1 to 31, run on the
    month's last day in shorter months. ``until`` is the last local date an
    occurrence may fall on (inclusive), or None for no end.
    """

    frequency: Frequency
    at: time
    weekdays: frozenset[int] = frozenset()
    day_of_month: int | None = None
    until: date | None = None

    def __post_init__(self) -> None:
        if self.frequency == Frequency.WEEKLY:
            assert self.weekdays, "a weekly rule needs weekdays"
            assert self.weekdays <= set(range(7))
        if self.frequency == Frequency.MONTHLY:
            assert self.day_of_month is not None
            assert 1 <= self.day_of_month <= 31

    def _days_from(self, start: date) -> Iterator[date]:
        if self.frequency == Frequency.MONTHLY:
            assert self.day_of_month is not None
            year, month = start.year, start.month
            while True:
                last = calendar.monthrange(year, month)[1]
                day = date(year, month, min(self.day_of_month, last))
                if day >= start:
                    yield day
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        else:
            day = start
            while True:
                if self.frequency == Frequency.DAILY or day.weekday() in self.weekdays:
                    yield day
                day += timedelta(days=1)

    def next_after(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """The first occurrence strictly after ``now``, or None past ``until``.

        Returned in UTC, like ``local_instant``.
        """
        now = now.astimezone(UTC)
        # A day before today's local date covers a zone behind ``now``'s.
        start = now.astimezone(zone).date() - timedelta(days=1)
        for day in self._days_from(start):
            if self.until is not None and day > self.until:
                return None
            candidate = local_instant(day, self.at, zone)
            if candidate > now:
                return candidate
        raise AssertionError("unreachable: the day iterators never end")

    def describe(self) -> str:
        """In words, e.g. "Every Monday and Friday at 09:00 until 31 Dec 2025"."""
        at = self.at.strftime("%H:%M")
        if self.frequency == Frequency.DAILY:
            words = f"Every day at {at}"
        elif self.frequency == Frequency.WEEKLY:
            names = [WEEKDAY_NAMES[d] for d in sorted(self.weekdays)]
            listed = (
                names[0]
                if len(names) == 1
                else ", ".join(names[:-1]) + " and " + names[-1]
            )
            words = f"Every {listed} at {at}"
        else:
            assert self.day_of_month is not None
            words = f"Monthly on day {self.day_of_month} at {at}"
            if self.day_of_month > 28:
                words += " (or the month's last day)"
        if self.until is not None:
            words += f" until {self.until.day} {self.until:%b %Y}"
        return words


@dataclass(frozen=True)
class QuietHours:
    """A daily local period when nothing is sent, e.g. 21:00 to 08:00.

    A start later than the end spans midnight. A start equal to the end is
    refused: it would mean all day or never.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        assert self.start != self.end, "quiet hours need a length"

    def release(self, at: datetime, zone: ZoneInfo) -> datetime | None:
        """When a send wanted at ``at`` may go: the period's end, or None.

        None means ``at`` is outside the quiet hours and the send goes as
        wanted. The end is resolved like any local time (``local_instant``),
        so an end inside a spring-forward gap is the gap's end, and an end
        in an autumn repeat is its first occurrence: a send in the repeated
        hour after that is outside the quiet hours.
        """
        at = at.astimezone(UTC)
        local = at.astimezone(zone)
        now = local.time().replace(tzinfo=None, fold=0)
        today = local.date()
        if self.start < self.end:
            inside = self.start <= now < self.end
            end_day = today
        elif now >= self.start:
            inside, end_day = True, today + timedelta(days=1)
        else:
            inside, end_day = now < self.end, today
        if not inside:
            return None
        end = local_instant(end_day, self.end, zone)
        return end if end > at else None

    def describe(self) -> str:
        return f"{self.start:%H:%M}\u2013{self.end:%H:%M}"
