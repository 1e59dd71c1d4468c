from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from tmc.contacts.models import Group
from tmc.identity.models import User
from tmc.lib.recurrence import WEEKDAY_NAMES, local_instant
from tmc.messaging.models import Schedule, SenderId
from tmc.messaging.scheduling import When


class CampaignForm(forms.Form):
    numbers = forms.CharField(
        label="Numbers",
        required=False,
        strip=False,
        help_text="One a line, or separated by commas, e.g. 07400 123456.",
        widget=forms.Textarea(
            attrs={"rows": 8, "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    groups = forms.TypedMultipleChoiceField(
        label="Groups",
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
    )
    sender = forms.ChoiceField(label="From")
    body = forms.CharField(
        label="Message",
        strip=False,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        senders = SenderId.objects.for_user(user).filter(is_approved=True)
        sender = self.fields["sender"]
        assert isinstance(sender, forms.ChoiceField)
        sender.choices = [(s.value, s.value) for s in senders]
        groups = self.fields["groups"]
        assert isinstance(groups, forms.TypedMultipleChoiceField)
        groups.choices = [
            (g.pk, g.name) for g in Group.objects.for_user(user).order_by("name")
        ]


class WallClockField(forms.DateTimeField):
    """A date and time as read on the organisation's clock, kept naive.

    Django would place it in the server's zone and refuse a time a clock
    change skips there; the caller places it in the organisation's zone.
    """

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        parsed = forms.fields.BaseTemporalField.to_python(self, str(value).strip())
        assert isinstance(parsed, datetime)
        return parsed


class WhenForm(forms.Form):
    """When to send: now, once at a local date and time, or repeating.

    Times are the organisation's local times; ``when`` turns them into a
    ``scheduling.When``.
    """

    NOW, AT, REPEAT = "now", "at", "repeat"

    timing = forms.ChoiceField(
        label="Send",
        choices=[
            (NOW, "Now"),
            (AT, "At a date and time"),
            (REPEAT, "Repeatedly"),
        ],
        initial=NOW,
        widget=forms.RadioSelect,
        required=False,
    )
    run_at = WallClockField(
        label="Date and time",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )
    repeat = forms.ChoiceField(
        label="Repeat",
        required=False,
        choices=[
            (Schedule.Repeat.DAILY.value, "Every day"),
            (Schedule.Repeat.WEEKLY.value, "Every week, on the days chosen"),
            (Schedule.Repeat.MONTHLY.value, "Every month, on a day of the month"),
        ],
    )
    time_of_day = forms.TimeField(
        label="At",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="Days of the week",
        required=False,
        coerce=int,
        choices=list(enumerate(WEEKDAY_NAMES)),
        widget=forms.CheckboxSelectMultiple,
    )
    day_of_month = forms.IntegerField(
        label="Day of the month",
        required=False,
        min_value=1,
        max_value=31,
        help_text="29, 30 or 31 run on the last day of shorter months.",
    )
    ends_on = forms.DateField(
        label="Until",
        required=False,
        help_text="The last date it may run; leave empty for no end.",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, zone: ZoneInfo, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone

    @property
    def is_now(self) -> bool:
        return self.cleaned_data.get("timing") in ("", None, self.NOW)

    def when(self) -> When:
        data = self.cleaned_data
        if data["timing"] == self.AT:
            run_at: datetime | None = data["run_at"]
            if run_at is not None:
                # The wall time typed is the organisation's, whatever zone
                # the form parsed it in; a time a clock change skips is read
                # as the first instant after it.
                run_at = local_instant(run_at.date(), run_at.time(), self.zone)
            return When(repeat=Schedule.Repeat.ONCE, run_at=run_at)
        repeat = data["repeat"] or Schedule.Repeat.DAILY
        return When(
            repeat=Schedule.Repeat(repeat),
            time_of_day=data["time_of_day"],
            weekdays=frozenset(data["weekdays"] or ()),
            day_of_month=data["day_of_month"],
            ends_on=data["ends_on"],
        )

    @classmethod
    def initial_for(cls, schedule: Schedule) -> dict[str, Any]:
        zone = schedule.organisation.zone
        return {
            "timing": cls.AT if schedule.repeat == Schedule.Repeat.ONCE else cls.REPEAT,
            "run_at": schedule.run_at.astimezone(zone).replace(tzinfo=None)
            if schedule.run_at
            else None,
            "repeat": ""
            if schedule.repeat == Schedule.Repeat.ONCE
            else schedule.repeat,
            "time_of_day": schedule.time_of_day,
            "weekdays": list(schedule.weekdays),
            "day_of_month": schedule.day_of_month,
            "ends_on": schedule.ends_on,
        }
