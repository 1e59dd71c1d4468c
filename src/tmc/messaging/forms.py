from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse_lazy

from tmc.identity.models import User
from tmc.messaging.models import SenderId
from tmc.messaging.services import TEMPLATE_NAME_MAX


class ComposeForm(forms.Form):
    recipient = forms.CharField(
        label="To",
        max_length=32,
        help_text="A mobile number, e.g. 07400 123456 or +33 6 12 34 56 78.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "inputmode": "tel", "autofocus": True}
        ),
    )
    sender = forms.ChoiceField(label="From")
    body = forms.CharField(
        label="Message",
        strip=False,
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
    )
    replace_lookalikes = forms.BooleanField(
        label="Replace look-alike characters",
        required=False,
        # Ticking it redraws the count and the preview of what will be sent.
        widget=forms.CheckboxInput(
            attrs={
                "hx-post": reverse_lazy("messaging:segments"),
                "hx-trigger": "change",
                "hx-target": "#segment-info",
                "hx-swap": "outerHTML",
            }
        ),
        help_text=(
            "Curly quotes, long dashes and special spaces become their plain "
            "twins, so the message goes as GSM-7. The preview shows the result."
        ),
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        senders = SenderId.objects.for_user(user).filter(is_approved=True)
        field = self.fields["sender"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(s.value, s.value) for s in senders]


class MessageTemplateForm(forms.Form):
    # Both checked by message_template_create / _update, which say what is
    # wrong in the same words wherever a template is saved from.
    name = forms.CharField(
        label="Name",
        required=False,
        help_text="How it is listed on the compose page, e.g. Shift reminder.",
        widget=forms.TextInput(attrs={"maxlength": TEMPLATE_NAME_MAX}),
    )
    body = forms.CharField(
        label="Message",
        strip=False,
        required=False,
        help_text=(
            "Merge fields are filled in from each recipient's contact: "
            "{first_name}, {last_name}, {name} and any custom field, such as "
            "{shift_day}. Write {{ or }} for a brace itself."
        ),
        widget=forms.Textarea(attrs={"rows": 6}),
    )
