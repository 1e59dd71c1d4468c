"""Password rules that follow the security policy in force for the user."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError

from tmc.identity.policy import platform_policy, policy_for
from tmc.lib.security_policy import SecurityPolicy


def _policy(user: Any) -> SecurityPolicy:
    organisation = getattr(user, "organisation", None) if user else None
    return policy_for(organisation) if organisation else platform_policy()


class PolicyPasswordValidator:
    """Minimum length and, where the policy asks, letters mixed with digits."""

    def validate(self, password: str, user: Any = None) -> None:
        policy = _policy(user)
        problems = []
        if len(password) < policy.password_min_length:
            problems.append(
                ValidationError(
                    "This password is too short. It must contain at least "
                    f"{policy.password_min_length} characters.",
                    code="password_too_short",
                )
            )
        if policy.password_require_letters_and_digits and not (
            any(c.isalpha() for c in password) and any(c.isdigit() for c in password)
        ):
            problems.append(
                ValidationError(
                    "The password must mix letters and numbers.",
                    code="password_letters_and_digits",
                )
            )
        if problems:
            raise ValidationError(problems)

    def get_help_text(self) -> str:
        policy = platform_policy()
        text = f"At least {policy.password_min_length} characters"
        if policy.password_require_letters_and_digits:
            text += ", mixing letters and numbers"
        return text + "."


class PasswordHistoryValidator:
    """Refuse the current password and the ones before it, per the policy."""

    def validate(self, password: str, user: Any = None) -> None:
        if user is None or user.pk is None:
            return
        keep = _policy(user).password_history
        earlier = list(
            user.password_history.values_list("password", flat=True)[: max(keep - 1, 0)]
        )
        for encoded in [user.password, *earlier]:
            if encoded and check_password(password, encoded):
                raise ValidationError(
                    f"Choose a password you have not used for your last {keep} "
                    "passwords.",
                    code="password_reused",
                )

    def get_help_text(self) -> str:
        return "It must differ from your recent passwords."
