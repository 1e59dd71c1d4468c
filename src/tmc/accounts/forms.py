from __future__ import annotations

from django import forms


class VerifiedNumberForm(forms.Form):
    # Checked by verified_number_add, which says what is wrong.
    number = forms.CharField(
        label="Mobile number",
        max_length=32,
        help_text="We text a 6-digit code to it, free of charge.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "tel"}),
    )


class VerificationCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=6,
        min_length=6,
        help_text="The 6 digits texted to the number; valid for 15 minutes.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
    )
