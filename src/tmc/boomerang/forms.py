"""The question form; the rules themselves live in services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from tmc.boomerang.answers import LANGUAGES
from tmc.boomerang.answers import Kind as AnswerKind
from tmc.boomerang.models import QUESTION_KINDS, Ticket, VirtualNumber
from tmc.boomerang.services import FollowUps
from tmc.contacts.models import Group
from tmc.identity.models import User

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
        choices=QUESTION_KINDS,
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

    auto_replies = forms.CharField(
        label="Auto-replies",
        required=False,
        help_text="One a line, answer = text, e.g. “yes = Thanks, see you "
        "Saturday” or “B = Afternoon it is”.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    limit_count = forms.IntegerField(
        label="Places",
        required=False,
        min_value=1,
        help_text="Only the first this many who give the answer below get a place.",
    )
    limit_value = forms.CharField(
        label="Answer that takes a place", required=False, max_length=40
    )
    limit_reply = forms.CharField(
        label="Text for those with a place", required=False, max_length=918
    )
    over_limit_reply = forms.CharField(
        label="Text for those too late", required=False, max_length=918
    )
    reminder_hours = forms.IntegerField(
        label="Remind those who have not answered after (hours)",
        required=False,
        min_value=1,
        max_value=24 * 30,
    )
    reminder_text = forms.CharField(label="Reminder", required=False, max_length=918)
    confirm_reuse = forms.BooleanField(
        label="Send anyway, closing their oldest open question",
        required=False,
        widget=forms.HiddenInput,
    )

    QUESTION_FIELDS = (
        "title",
        "recipients",
        "body",
        "kind",
        "options",
        "language",
        "ticket_kind",
        "closes_at",
    )

    def question_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.QUESTION_FIELDS]

    def clean_auto_replies(self) -> dict[str, str]:
        replies: dict[str, str] = {}
        for number, line in enumerate(
            self.cleaned_data["auto_replies"].splitlines(), 1
        ):
            if not line.strip():
                continue
            answer, equals, text = line.partition("=")
            if not equals or not answer.strip() or not text.strip():
                raise ValidationError(f"Line {number} is not answer = text.")
            replies[_answer_value(answer)] = text.strip()
        return replies

    def clean_limit_value(self) -> str:
        raw: str = self.cleaned_data["limit_value"]
        return _answer_value(raw) if raw.strip() else ""

    def follow_ups(self) -> FollowUps:
        hours = self.cleaned_data.get("reminder_hours")
        return FollowUps(
            auto_replies=self.cleaned_data["auto_replies"],
            limit_value=self.cleaned_data["limit_value"],
            limit_count=self.cleaned_data.get("limit_count"),
            limit_reply=self.cleaned_data["limit_reply"],
            over_limit_reply=self.cleaned_data["over_limit_reply"],
            reminder_after=timedelta(hours=hours) if hours else None,
            reminder_text=self.cleaned_data["reminder_text"],
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        place_settings = ("limit_value", "limit_reply", "over_limit_reply")
        if cleaned.get("limit_count") is None and any(
            cleaned.get(name) for name in place_settings
        ):
            self.add_error("limit_count", "Say how many places there are.")
        if cleaned.get("ticket_kind") == Ticket.Kind.DEADLINE:
            closes_at = cleaned.get("closes_at")
            if closes_at is None:
                self.add_error("closes_at", "Choose when replies stop.")
            elif closes_at <= timezone.now():
                raise ValidationError({"closes_at": "Choose a time in the future."})
        return cleaned

    def option_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["options"].splitlines()]


def _answer_value(text: str) -> str:
    """The stored value an author means: "Yes" is yes, "b" is option B."""
    word = text.strip()
    return word.upper() if len(word) == 1 else word.lower()


class SimulatedReplyForm(forms.Form):
    body = forms.CharField(label="Reply", max_length=918)


class ConversationReplyForm(forms.Form):
    body = forms.CharField(
        label="Reply", strip=False, widget=forms.Textarea(attrs={"rows": 3})
    )


class KeywordRuleForm(forms.Form):
    virtual_number = forms.ModelChoiceField(
        label="Number", queryset=VirtualNumber.objects.none(), empty_label=None
    )
    keyword = forms.CharField(
        label="Keyword", max_length=20, help_text="One word, e.g. INFO or JOIN."
    )
    reply = forms.CharField(
        label="Reply",
        required=False,
        max_length=918,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    group = forms.ModelChoiceField(
        label="Add the sender to",
        queryset=Group.objects.none(),
        required=False,
        empty_label="No group",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        numbers = self.fields["virtual_number"]
        assert isinstance(numbers, forms.ModelChoiceField)
        numbers.queryset = VirtualNumber.objects.active().filter(
            organisation_id=user.organisation_id
        )
        groups = self.fields["group"]
        assert isinstance(groups, forms.ModelChoiceField)
        groups.queryset = Group.objects.for_user(user)

    def has_numbers(self) -> bool:
        numbers = self.fields["virtual_number"]
        assert isinstance(numbers, forms.ModelChoiceField)
        return numbers.queryset is not None and numbers.queryset.exists()
