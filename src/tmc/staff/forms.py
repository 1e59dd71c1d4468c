from __future__ import annotations

from typing import Any

from django import forms

from tmc.accounts.models import Organisation, Package
from tmc.staff.levels import Level


class StaffLoginForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autofocus": True})
    )
    password = forms.CharField(strip=False, widget=forms.PasswordInput)


class StaffSecondPasswordForm(forms.Form):
    second_password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autofocus": True})
    )


class StaffNewSecondPasswordForm(forms.Form):
    new_second_password = forms.CharField(
        label="Choose a second password", strip=False, widget=forms.PasswordInput
    )


class StaffPasswordForm(forms.Form):
    current_password = forms.CharField(strip=False, widget=forms.PasswordInput)
    new_password = forms.CharField(strip=False, widget=forms.PasswordInput)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=200,
        help_text="Why you need this account's data, e.g. a support ticket "
        "reference. The organisation's Controllers can read it.",
        widget=forms.TextInput(attrs={"autofocus": True}),
    )


class CreditsForm(forms.Form):
    amount = forms.IntegerField(
        help_text="Positive to add credits, negative to remove them."
    )
    reason = forms.CharField(max_length=150)
    purchase = forms.BooleanField(
        required=False,
        label="Bought",
        help_text="The client paid for these credits; ends a free trial.",
    )


class PackageForm(forms.Form):
    package = forms.ModelChoiceField(
        queryset=Package.objects.all(), required=False, empty_label="No package"
    )
    reason = forms.CharField(
        max_length=150,
        help_text="Why the package changes; kept in the client's activity log.",
        error_messages={"required": "Say why the package changes."},
    )


class StaffMemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    full_name = forms.CharField(max_length=150)
    email = forms.EmailField(required=False)
    level = forms.TypedChoiceField(
        coerce=int, choices=[(lvl.value, f"{lvl.value}: {lvl.label}") for lvl in Level]
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput,
        help_text="A first password; they change it at first use if level 2+.",
    )


class StaffLevelForm(forms.Form):
    level = forms.TypedChoiceField(
        coerce=int, choices=[(lvl.value, f"{lvl.value}: {lvl.label}") for lvl in Level]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


class VirtualNumbersForm(forms.Form):
    numbers = forms.CharField(
        label="Numbers",
        help_text="Mobile numbers in E.164, one a line.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    organisation = forms.ModelChoiceField(
        label="Pool",
        queryset=Organisation.objects.order_by("name"),
        required=False,
        empty_label="Shared pool",
        help_text="Or dedicate them to one organisation.",
    )

    def clean_numbers(self) -> list[str]:
        text: str = self.cleaned_data["numbers"]
        return [line.strip() for line in text.splitlines() if line.strip()]


class RouteForm(forms.Form):
    # Not "prefix": forms use that name for their own.
    destination = forms.CharField(
        label="Prefix",
        max_length=7,
        required=False,
        help_text="An E.164 prefix such as +44 or +1; empty for the default route.",
    )
    gateways = forms.CharField(
        max_length=400,
        help_text="Gateway names, most preferred first, separated by commas.",
    )

    def clean_gateways(self) -> list[str]:
        raw: str = self.cleaned_data["gateways"]
        return [name.strip() for name in raw.split(",") if name.strip()]
