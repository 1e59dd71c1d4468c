"""The question form; the rules themselves live in services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from tmc.boomerang.answers import LANGUAGES
from tmc.boomerang.answers import Kind as AnswerKind
from tmc.boomerang.models import Ticket

KIND_LABELS = {
    AnswerKind.YES_NO: "Yes or no",
    AnswerKind.CHOICE: "Multiple choice",
    AnswerKind.NUMBER: "A number",
    AnswerKind.TEXT: "Free text",
}
LANGUAGE_LABELS = {"en": "English", "fr": "French", "es": "Spanish", "de": "German"}


class QuestionForm(forms.Form):
    title = forms.CharField(
        label="Question name",
        max_length=120,
        help_text="For the results page, e.g. “Saturday shift”. Not sent.",
    )
    recipients = forms.CharField(
        label="To",
        help_text="Mobile numbers, one a line or separated by commas.",
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
    )
    body = forms.CharField(
        label="Message",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Say how to answer, e.g. “Reply YES or NO”.",
    )
    kind = forms.ChoiceField(
        label="Answers expected",
        choices=[(kind.value, label) for kind, label in KIND_LABELS.items()],
        initial=AnswerKind.YES_NO.value,
        widget=forms.RadioSelect,
    )
    options = forms.CharField(
        label="Options",
        required=False,
        help_text="For multiple choice: one a line; people answer A, B, C… "
        "or 1, 2, 3… or the option's words.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    language = forms.ChoiceField(
        label="Language of the answers",
        choices=[(code, LANGUAGE_LABELS[code]) for code in LANGUAGES],
        initial="en",
    )
    ticket_kind = forms.ChoiceField(
        label="Replies taken",
        choices=Ticket.Kind.choices,
        initial=Ticket.Kind.SINGLE,
    )
    closes_at = forms.DateTimeField(
        label="Deadline",
        required=False,
        help_text="For “Open until a deadline”, in your organisation's time.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("ticket_kind") == Ticket.Kind.DEADLINE:
            closes_at = cleaned.get("closes_at")
            if closes_at is None:
                self.add_error("closes_at", "Choose when replies stop.")
            elif closes_at <= timezone.now():
                raise ValidationError({"closes_at": "Choose a time in the future."})
        return cleaned

    def option_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["options"].splitlines()]


class SimulatedReplyForm(forms.Form):
    body = forms.CharField(label="Reply", max_length=918)
