from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.utils import timezone

from tmc.api.models import Scope, WebhookEvent
from tmc.identity.models import Role, User


class ApiKeyForm(forms.Form):
    """A new key: whom it acts as, what it may do, where from, until when."""

    name = forms.CharField(
        max_length=80, help_text="The program that will use it, e.g. “Web shop”."
    )
    user = forms.ModelChoiceField(
        queryset=User.objects.none(),
        help_text="The key acts as this user, with their permissions and limits.",
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional. The key stops working at the end of this day.",
    )
    allowed_networks = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional. Addresses or CIDR ranges, one a line; empty for any.",
    )

    def __init__(self, *args: Any, actor: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        users = User.objects.filter(organisation=actor.organisation, is_active=True)
        if actor.role != Role.CONTROLLER:
            users = users.exclude(role=Role.CONTROLLER)
        self.fields["user"].queryset = users.order_by("username")  # type: ignore[attr-defined]

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time.max))

    def networks(self) -> list[str]:
        return str(self.cleaned_data.get("allowed_networks") or "").splitlines()


class WebhookForm(forms.Form):
    """A new webhook endpoint: where to, for which events."""

    url = forms.URLField(
        max_length=500,
        assume_scheme="https",
        help_text="An https:// address on the public internet.",
    )
    events = forms.MultipleChoiceField(
        choices=WebhookEvent.choices, widget=forms.CheckboxSelectMultiple
    )
    full_numbers = forms.BooleanField(
        required=False,
        help_text="Send full mobile numbers (needs your permission to see them); "
        "otherwise numbers are masked.",
    )
