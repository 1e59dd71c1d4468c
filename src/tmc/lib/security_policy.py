"""The security policy: every number the access rules depend on, in one place.

This module holds the values and the rule for combining them;
``tmc.identity.policy`` finds the one in force for an organisation.

The provider chooses a preset for the whole platform with
TMC_SECURITY_PRESET; ``published`` (the default) follows the published TMC
security policy clause by clause, ``asvs`` follows OWASP ASVS 5.0 and NIST SP
800-63B. An organisation's Controller may tighten, never loosen, the values
for their own organisation (``OrganisationSecurity``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class SecurityPolicy:
    password_min_length: int
    # Letters and digits both required (the published policy's "P4s5W0rD").
    password_require_letters_and_digits: bool
    password_history: int
    idle_minutes: int
    lockout_attempts: int
    second_password_required: bool
    second_password_window_minutes: int
    second_password_attempts: int
    totp_required: bool
    device_token_days: int
    # None: staff passwords never expire by age (NIST SP 800-63B 3.1.1.2).
    staff_password_max_age_days: int | None


PRESETS = {
    "published": SecurityPolicy(
        password_min_length=8,
        password_require_letters_and_digits=True,
        password_history=5,
        idle_minutes=20,
        lockout_attempts=5,
        second_password_required=True,
        second_password_window_minutes=15,
        second_password_attempts=5,
        totp_required=False,
        device_token_days=30,
        staff_password_max_age_days=30,
    ),
    "asvs": SecurityPolicy(
        password_min_length=15,
        password_require_letters_and_digits=False,
        password_history=5,
        idle_minutes=20,
        lockout_attempts=5,
        second_password_required=False,
        second_password_window_minutes=15,
        second_password_attempts=5,
        totp_required=True,
        device_token_days=30,
        staff_password_max_age_days=None,
    ),
}

# Which way is stricter, for each number an organisation may change.
TIGHTER_IS_HIGHER = frozenset({"password_min_length", "password_history"})
TIGHTER_IS_LOWER = frozenset(
    {
        "idle_minutes",
        "lockout_attempts",
        "second_password_window_minutes",
        "second_password_attempts",
        "device_token_days",
    }
)
TIGHTER_IS_TRUE = frozenset(
    {"password_require_letters_and_digits", "second_password_required", "totp_required"}
)
ORGANISATION_ADJUSTABLE = TIGHTER_IS_HIGHER | TIGHTER_IS_LOWER | TIGHTER_IS_TRUE


def tighten(base: SecurityPolicy, **requested: int | bool | None) -> SecurityPolicy:
    """Apply an organisation's values to ``base``, keeping only the stricter.

    A requested value that would loosen the base is ignored, so a stored
    setting can never weaken the platform's floor, even if the provider's
    preset is tightened after the organisation chose its values.
    """
    changes: dict[str, Any] = {}
    for name, value in requested.items():
        if value is None:
            continue
        if name not in ORGANISATION_ADJUSTABLE:
            raise ValueError(f"{name} is not adjustable by an organisation")
        current = getattr(base, name)
        if (name in TIGHTER_IS_HIGHER and value > current) or (
            name in TIGHTER_IS_LOWER and value < current
        ):
            changes[name] = value
        elif name in TIGHTER_IS_TRUE and value and not current:
            changes[name] = True
    return replace(base, **changes)
