"""Password rules, and the one policy object every security number comes from."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.test import Client

from tmc.accounts.models import Organisation
from tmc.identity.models import OrganisationSecurity, User
from tmc.identity.policy import policy_for
from tmc.identity.services import password_change
from tmc.lib.security_policy import PRESETS, SecurityPolicy, tighten
from tmc.testing import PASSWORD, Tenant

PUBLISHED = PRESETS["published"]


def _fresh(user: User) -> User:
    """The user with a freshly loaded organisation (policy_for caches on it)."""
    return User.objects.select_related("organisation").get(pk=user.pk)


def _refusal(user: User, new_password: str) -> str:
    """Why changing ``user``'s password to ``new_password`` is refused."""
    with pytest.raises(ValidationError) as refused:
        password_change(user=user, new_password=new_password, current_password=None)
    return " ".join(refused.value.message_dict["new_password"])


def _reloaded(organisation: Organisation) -> Organisation:
    return Organisation.objects.get(pk=organisation.pk)


def _security_form(**overrides: Any) -> dict[str, Any]:
    """The organisation security form, filled with the published values."""
    data: dict[str, Any] = {
        "password_min_length": PUBLISHED.password_min_length,
        "password_history": PUBLISHED.password_history,
        "password_require_letters_and_digits": "on",
        "idle_minutes": PUBLISHED.idle_minutes,
        "lockout_attempts": PUBLISHED.lockout_attempts,
        "second_password_required": "on",
        "second_password_window_minutes": PUBLISHED.second_password_window_minutes,
        "second_password_attempts": PUBLISHED.second_password_attempts,
        "device_token_days": PUBLISHED.device_token_days,
    }
    data.update(overrides)
    return data


def _fail_logins(username: str, times: int) -> None:
    for _ in range(times):
        Client().post("/login/", {"username": username, "password": "Wr0ng-Guess-99"})


# --- password rules (published preset) ---------------------------------------


def test_a_password_needs_at_least_8_characters(tenant_a: Tenant) -> None:
    """Policy: passwords have at least 8 characters."""
    user = _fresh(tenant_a.user)

    assert "at least 8 characters" in _refusal(user, "Tr4vel7")

    password_change(user=user, new_password="Tr4vel7s", current_password=PASSWORD)
    assert _fresh(user).check_password("Tr4vel7s")


@pytest.mark.parametrize("password", ["Horse-Battery-Staple", "8402-7719-3365"])
def test_a_password_must_mix_letters_and_digits(
    tenant_a: Tenant, password: str
) -> None:
    """Policy: passwords mix letters and numbers (like "P4s5W0rD")."""
    user = _fresh(tenant_a.user)

    assert "must mix letters and numbers" in _refusal(user, password)
    assert _fresh(user).check_password(PASSWORD)


@pytest.mark.parametrize("password", ["password123", "qwerty123", "letmein123"])
def test_a_common_password_is_refused(tenant_a: Tenant, password: str) -> None:
    """Policy: common passwords are refused."""
    user = _fresh(tenant_a.user)

    assert "too common" in _refusal(user, password)


def test_a_password_like_the_username_is_refused(tenant_a: Tenant) -> None:
    """Policy: passwords must not resemble the username."""
    user = _fresh(tenant_a.user)
    assert user.username == "acme-user"

    assert "too similar to the username" in _refusal(user, "Acme-User1")


def test_the_last_5_passwords_are_not_reused(tenant_a: Tenant) -> None:
    """Policy: a new password differs from the last 5."""
    user = _fresh(tenant_a.user)
    current = PASSWORD
    for n in range(1, 5):
        new = f"Fresh-Walk-{n}x"
        password_change(user=user, new_password=new, current_password=current)
        current = new

    # The current one and the four before it (the first included) are refused.
    for earlier in [PASSWORD, "Fresh-Walk-1x", "Fresh-Walk-3x", current]:
        assert "last 5 passwords" in _refusal(user, earlier), earlier

    password_change(user=user, new_password="Fresh-Walk-5x", current_password=current)
    # Now the first password is the sixth back, and may come again.
    password_change(user=user, new_password=PASSWORD, current_password="Fresh-Walk-5x")
    assert _fresh(user).check_password(PASSWORD)


def test_a_password_change_needs_the_current_password(tenant_a: Tenant) -> None:
    """Policy: changing a password needs the current one."""
    user = _fresh(tenant_a.user)

    with pytest.raises(ValidationError) as refused:
        password_change(
            user=user, new_password="Tr4vel7s-Far", current_password="Not-it-123"
        )

    assert "current_password" in refused.value.message_dict
    assert _fresh(user).check_password(PASSWORD)


def test_the_asvs_preset_asks_15_characters_and_no_composition(
    tenant_a: Tenant, settings: Any
) -> None:
    """Policy (ASVS preset): 15 characters at least, no composition rule."""
    passphrase = "sunlit meadow under quiet rain"
    assert "must mix letters and numbers" in _refusal(_fresh(tenant_a.user), passphrase)

    settings.TMC_SECURITY_POLICY = PRESETS["asvs"]
    user = _fresh(tenant_a.user)

    assert "at least 15 characters" in _refusal(user, "Mixed-Pass-123")
    password_change(user=user, new_password=passphrase, current_password=PASSWORD)
    assert _fresh(user).check_password(passphrase)


# --- one policy object -------------------------------------------------------


def test_the_published_preset_is_the_published_policy() -> None:
    """Policy: the published values (idle 20 min, 5 attempts, 8 characters...)."""
    assert asdict(PUBLISHED) == {
        "password_min_length": 8,
        "password_require_letters_and_digits": True,
        "password_history": 5,
        "idle_minutes": 20,
        "lockout_attempts": 5,
        "second_password_required": True,
        "second_password_window_minutes": 15,
        "second_password_attempts": 5,
        "totp_required": False,
        "device_token_days": 30,
        "staff_password_max_age_days": 30,
    }
    assert django_settings.TMC_SECURITY_POLICY == PUBLISHED


def test_the_published_lockout_locks_after_5_failures(tenant_a: Tenant) -> None:
    """Policy: an account locks after 5 failed log-in attempts."""
    _fail_logins("acme-user", 4)
    assert _fresh(tenant_a.user).locked_at is None

    _fail_logins("acme-user", 1)
    assert _fresh(tenant_a.user).locked_at is not None


def test_an_organisation_can_tighten_its_policy(tenant_a: Tenant) -> None:
    """Policy: a Controller may tighten the organisation's security values."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(
        "/organisation/security/",
        _security_form(idle_minutes=10, lockout_attempts=3, password_min_length=12),
    )

    assert response.status_code == 302
    policy = policy_for(_reloaded(tenant_a.organisation))
    assert (policy.idle_minutes, policy.lockout_attempts) == (10, 3)
    assert policy.password_min_length == 12

    # The tighter values are the ones enforced.
    _fail_logins("acme-user", 2)
    assert _fresh(tenant_a.user).locked_at is None
    _fail_logins("acme-user", 1)
    assert _fresh(tenant_a.user).locked_at is not None
    assert "at least 12 characters" in _refusal(
        _fresh(tenant_a.administrator), "Tr4vel7s-Fa"
    )


def test_an_organisation_cannot_loosen_its_policy(tenant_a: Tenant) -> None:
    """Policy: an organisation may never loosen the platform's values."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(
        "/organisation/security/",
        _security_form(
            idle_minutes=30,
            lockout_attempts=10,
            password_min_length=6,
            second_password_attempts=3,  # tighter, but refused with the rest
        ),
    )

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"idle_minutes", "lockout_attempts", "password_min_length"} <= set(errors)
    assert not OrganisationSecurity.objects.filter(
        organisation=tenant_a.organisation
    ).exists()
    assert policy_for(_reloaded(tenant_a.organisation)) == PUBLISHED


def test_an_organisation_cannot_drop_a_required_rule(tenant_a: Tenant) -> None:
    """Policy: an organisation may never turn off a rule the platform requires."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    form = _security_form()
    del form["second_password_required"]
    del form["password_require_letters_and_digits"]

    response = client.post("/organisation/security/", form)

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert {"second_password_required", "password_require_letters_and_digits"} <= set(
        errors
    )
    assert policy_for(_reloaded(tenant_a.organisation)) == PUBLISHED


def test_tighten_ignores_looser_values() -> None:
    """Policy: stored organisation values can only tighten, never loosen."""
    looser = tighten(
        PUBLISHED,
        idle_minutes=30,
        lockout_attempts=10,
        password_min_length=6,
        password_history=1,
        password_require_letters_and_digits=False,
        second_password_required=False,
        second_password_window_minutes=60,
        second_password_attempts=20,
        device_token_days=365,
    )
    assert looser == PUBLISHED

    tighter = tighten(
        PUBLISHED, idle_minutes=10, lockout_attempts=3, password_min_length=12
    )
    assert (tighter.idle_minutes, tighter.lockout_attempts) == (10, 3)
    assert tighter.password_min_length == 12
    assert tighter.device_token_days == PUBLISHED.device_token_days

    assert tighten(PUBLISHED, idle_minutes=None) == PUBLISHED
    with pytest.raises(ValueError, match="not adjustable"):
        tighten(PUBLISHED, staff_password_max_age_days=365)


def test_looser_stored_values_are_ignored_in_force(tenant_a: Tenant) -> None:
    """Policy: the platform's values are a floor, whatever is stored."""
    OrganisationSecurity.objects.create(
        organisation=tenant_a.organisation,
        idle_minutes=60,
        lockout_attempts=50,
        password_min_length=4,
        device_token_days=7,
    )

    policy: SecurityPolicy = policy_for(_reloaded(tenant_a.organisation))

    assert policy.idle_minutes == PUBLISHED.idle_minutes
    assert policy.lockout_attempts == PUBLISHED.lockout_attempts
    assert policy.password_min_length == PUBLISHED.password_min_length
    assert policy.device_token_days == 7
    _fail_logins("acme-user", 5)
    assert _fresh(tenant_a.user).locked_at is not None
