from __future__ import annotations

from typing import Any

from django import forms

from tmc.contacts.models import Group
from tmc.identity.models import User
from tmc.messaging.models import SenderId


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
