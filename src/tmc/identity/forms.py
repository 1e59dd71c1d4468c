from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import PasswordResetForm
from django.template.loader import render_to_string

from tmc.identity.models import Permission, Role, User
from tmc.identity.services import UserChanges
from tmc.lib.phone import (
    InvalidNumber,
    format_international,
    mask_number,
    normalise_mobile,
)
from tmc.lib.security_policy import ORGANISATION_ADJUSTABLE
from tmc.notifications.services import email_queue


class LoginForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "username",
                "autocapitalize": "none",
            }
        ),
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    remember = forms.BooleanField(
        required=False,
        label="Remember this device",
        help_text="Only on a computer nobody else uses. Control areas still ask "
        "for your second password.",
    )


class SecondFactorForm(forms.Form):
    """The second password, the authenticator code, or both, per the policy."""

    second_password = forms.CharField(
        label="Second password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=9,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
    )

    def __init__(
        self, *args: Any, needs_password: bool, needs_code: bool, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if not needs_password:
            del self.fields["second_password"]
        if not needs_code:
            del self.fields["code"]


class TotpConfirmForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=9,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
            }
        ),
    )


class NewSecondPasswordForm(forms.Form):
    current_second_password = forms.CharField(
        label="Current second password",
        strip=False,
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    new_second_password = forms.CharField(
        label="New second password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )
    confirm = forms.CharField(
        label="New second password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args: Any, needs_current: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not needs_current:
            del self.fields["current_second_password"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_second_password") != data.get("confirm"):
            self.add_error("confirm", "The two entries differ.")
        return data


class PasswordChangeForm(forms.Form):
    current_password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    confirm = forms.CharField(
        label="New password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_password") != data.get("confirm"):
            self.add_error("confirm", "The two entries differ.")
        return data


class UserForm(forms.Form):
    """Create or edit a user; choices are limited to what the actor holds.

    A manager who may not see full numbers never gets the edited user's
    mobile in the page: it is shown masked, the input stays empty, and an
    empty input keeps the number as it is.
    """

    username = forms.CharField(max_length=150)
    full_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField()
    mobile = forms.CharField(
        max_length=32,
        required=False,
        help_text="Optional. For alerts to this user.",
    )
    role = forms.ChoiceField(choices=Role.choices)
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    daily_message_limit = forms.IntegerField(
        min_value=0, required=False, help_text="Credits a day. Empty: no limit."
    )
    monthly_message_limit = forms.IntegerField(
        min_value=0, required=False, help_text="Credits a month. Empty: no limit."
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args: Any, actor: User, editing: User | None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.region = actor.organisation.default_region
        rank = {Role.USER: 1, Role.ADMINISTRATOR: 2, Role.CONTROLLER: 3}
        own = rank[Role(actor.role)]
        role_field = self.fields["role"]
        assert isinstance(role_field, forms.ChoiceField)
        role_field.choices = [
            (v, lbl) for v, lbl in Role.choices if rank[Role(v)] <= own
        ]
        if editing is not None:
            del self.fields["username"]

        self.hidden_mobile = ""
        if editing is not None and editing.mobile and not actor.can_view_full_numbers:
            self.hidden_mobile = editing.mobile
            # Whatever the caller passed as initial, the number stays out.
            self.initial.pop("mobile", None)
            self.fields["mobile"].help_text = (
                f"Now {mask_number(editing.mobile)}. Leave empty to keep it, or "
                "type a new number to replace it."
            )

    def clean_mobile(self) -> str:
        raw = self.cleaned_data["mobile"]
        if not raw.strip():
            return self.hidden_mobile
        try:
            return normalise_mobile(raw, self.region)
        except InvalidNumber as exc:
            raise forms.ValidationError(str(exc)) from exc

    def changes(self) -> UserChanges:
        data = self.cleaned_data
        return UserChanges(
            role=data["role"],
            full_name=data["full_name"],
            email=data["email"],
            permissions=frozenset(data["permissions"]),
            daily_message_limit=data["daily_message_limit"],
            monthly_message_limit=data["monthly_message_limit"],
            is_active=data["is_active"],
            mobile=data["mobile"],
        )

    @staticmethod
    def initial_for(user: User, *, viewer: User) -> dict[str, Any]:
        """The form's starting values for ``user``, as ``viewer`` may see them."""
        shown = user.mobile and viewer.can_view_full_numbers
        return {
            "full_name": user.full_name,
            "email": user.email,
            "mobile": format_international(user.mobile) if shown else "",
            "role": user.role,
            "permissions": sorted(user.permissions()),
            "daily_message_limit": user.daily_message_limit,
            "monthly_message_limit": user.monthly_message_limit,
            "is_active": user.is_active,
        }


class OrganisationSecurityForm(forms.Form):
    """A Controller's stricter values; the service refuses looser ones."""

    password_min_length = forms.IntegerField(min_value=1, max_value=128)
    password_history = forms.IntegerField(min_value=1, max_value=24)
    password_require_letters_and_digits = forms.BooleanField(required=False)
    idle_minutes = forms.IntegerField(min_value=1, max_value=1440)
    lockout_attempts = forms.IntegerField(min_value=1, max_value=100)
    second_password_required = forms.BooleanField(required=False)
    second_password_window_minutes = forms.IntegerField(min_value=1, max_value=1440)
    second_password_attempts = forms.IntegerField(min_value=1, max_value=100)
    device_token_days = forms.IntegerField(min_value=1, max_value=365)
    totp_required = forms.BooleanField(
        required=False,
        label="Require an authenticator app (TOTP) for Controllers and Administrators",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert set(self.fields) <= ORGANISATION_ADJUSTABLE


class NotifyingPasswordResetForm(PasswordResetForm):
    """Django's reset form (no enumeration), and the managers are told."""

    def get_users(self, email: str) -> Any:
        users = list(super().get_users(email))
        self.requested_for = users
        return users

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        # Sent by the worker, like every other email: the answer then takes
        # as long whether or not the address belongs to an account.
        subject = "".join(render_to_string(subject_template_name, context).splitlines())
        text = render_to_string(email_template_name, context)
        html = (
            render_to_string(html_email_template_name, context)
            if html_email_template_name
            else ""
        )
        email_queue(to_email, subject, text, html)
