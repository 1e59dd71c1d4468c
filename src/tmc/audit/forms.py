from __future__ import annotations

from django import forms

from tmc.audit.services import EventFilter


class ActivityFilterForm(forms.Form):
    action = forms.CharField(
        required=False,
        max_length=64,
        label="Action starts with",
        widget=forms.TextInput(attrs={"placeholder": "login, user., password."}),
    )
    actor = forms.CharField(required=False, max_length=200, label="Who")
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, object] | None:
        cleaned = super().clean()
        start, end = (
            self.cleaned_data.get("date_from"),
            self.cleaned_data.get("date_to"),
        )
        if start and end and start > end:
            self.add_error("date_to", "The end comes before the start.")
        return cleaned

    def event_filter(self) -> EventFilter:
        """The filter asked for; an invalid form filters nothing out."""
        if not self.is_valid():
            return EventFilter()
        data = self.cleaned_data
        return EventFilter(
            action=data["action"].strip(),
            actor=data["actor"].strip(),
            date_from=data["date_from"],
            date_to=data["date_to"],
        )
