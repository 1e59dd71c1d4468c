from __future__ import annotations

from zoneinfo import available_timezones

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


def _time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


class SendingSettingsForm(forms.Form):
    # Checked again by sending_settings_set, which says what is wrong.
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=_time_zone_choices,
        help_text="Scheduled sends and quiet hours follow its clock.",
    )
    quiet_start = forms.TimeField(
        label="Quiet hours start",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Texts sent from this time are held. Leave both empty for none.",
    )
    quiet_end = forms.TimeField(
        label="Quiet hours end",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Held texts go at this time; before the start means overnight.",
    )
    validity_hours = forms.IntegerField(
        label="Validity period (hours)",
        required=False,
        help_text=(
            "A text not handed to a network within this many hours of when it "
            "may go expires and its credits come back. Empty: the platform's "
            "default."
        ),
    )
