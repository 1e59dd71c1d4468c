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


class _ProviderForm(forms.Form):
    """What every provider has; each kind adds its own settings and secrets."""

    SECRETS: tuple[str, ...] = ()

    name = forms.SlugField(
        max_length=40,
        help_text="How routes name this provider: letters, digits and dashes.",
    )
    enabled = forms.BooleanField(required=False, initial=True)
    throughput = forms.IntegerField(
        label="Messages a second",
        min_value=1,
        max_value=100_000,
        initial=100,
        help_text="The contracted rate, held across every worker and bind.",
    )

    def __init__(self, *args: Any, stored: set[str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # A stored secret is never shown again: its field stays empty, and
        # left empty it keeps the stored value.
        for secret in self.SECRETS:
            field = self.fields[secret]
            field.required = False
            if stored is not None and secret in stored:
                field.help_text = "Stored. Leave empty to keep it; type to replace it."

    def provider_settings(self) -> dict[str, Any]:
        common = {"name", "enabled", "throughput", *self.SECRETS}
        return {k: v for k, v in self.cleaned_data.items() if k not in common}

    def provider_secrets(self) -> dict[str, str]:
        return {k: self.cleaned_data.get(k) or "" for k in self.SECRETS}


class SmppProviderForm(_ProviderForm):
    SECRETS = ("password",)

    host = forms.CharField(max_length=253)
    port = forms.IntegerField(min_value=1, max_value=65535, initial=2775)
    system_id = forms.CharField(max_length=15, label="System id")
    # SMPP 3.4 allows 8 characters (9 octets with the terminating NUL).
    password = forms.CharField(
        max_length=8, strip=False, widget=forms.PasswordInput(render_value=False)
    )
    system_type = forms.CharField(max_length=12, required=False)
    tls = forms.BooleanField(
        label="TLS", required=False, help_text="The SMSC's certificate is verified."
    )
    tls_ca_file = forms.CharField(
        label="TLS CA file",
        max_length=400,
        required=False,
        help_text="Path of a PEM file on the bind workers' machines, for an SMSC "
        "certificate signed by a private authority.",
    )
    window = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=10,
        help_text="submit_sm outstanding per bind; at most 2 to 3 times the rate.",
    )
    binds = forms.IntegerField(
        min_value=1, max_value=20, initial=1, help_text="Binds the contract allows."
    )
    gsm7_packed = forms.BooleanField(
        label="Pack GSM-7", required=False, help_text="For SMSCs that want septets."
    )


class HttpProviderForm(_ProviderForm):
    SECRETS = ("auth_header", "callback_secret")

    url = forms.URLField(
        label="URL",
        max_length=400,
        assume_scheme="https",
        help_text="Each message is POSTed here as JSON.",
    )
    auth_header = forms.CharField(
        label="Authentication header",
        max_length=400,
        widget=forms.PasswordInput(render_value=False),
        help_text="Sent with each POST, e.g. Authorization: Bearer …",
    )
    field_names = forms.CharField(
        label="Field names",
        max_length=400,
        required=False,
        help_text="ours=theirs pairs separated by commas, for to, from, text, "
        "reference, id, status and reason.",
    )
    callback_secret = forms.CharField(
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text="Signs the delivery reports and replies the provider sends back.",
    )

    def clean_auth_header(self) -> str:
        value: str = self.cleaned_data.get("auth_header") or ""
        if value and ":" not in value:
            raise forms.ValidationError("Write it as Header-Name: value.")
        return value

    def clean_field_names(self) -> dict[str, str]:
        from tmc.gateways.http.adapter import fields_parse

        try:
            return fields_parse(self.cleaned_data.get("field_names") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc


class VonageProviderForm(_ProviderForm):
    SECRETS = ("api_secret", "signature_secret")

    api_key = forms.CharField(label="API key", max_length=40)
    api_secret = forms.CharField(
        label="API secret", max_length=200, widget=forms.PasswordInput
    )
    signature_secret = forms.CharField(
        max_length=200,
        widget=forms.PasswordInput,
        help_text="Vonage signs delivery receipts and inbound texts with it; "
        "unsigned ones are refused. Point the account's webhooks at "
        "/gateways/vonage/<name>/reports/ and /inbound/.",
    )
    signature_method = forms.ChoiceField(
        choices=[(m, m) for m in ("sha256", "sha512", "sha1", "md5", "md5hash")],
        initial="sha256",
    )
    base_url = forms.URLField(
        label="SMS API address",
        max_length=200,
        required=False,
        assume_scheme="https",
        help_text="Empty for https://rest.nexmo.com.",
    )
    reports_url = forms.URLField(
        label="Reports API address",
        max_length=200,
        required=False,
        assume_scheme="https",
        help_text="Empty for https://api.nexmo.com.",
    )
