"""TOTP as the second factor: the ASVS preset, or an organisation's choice."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pyotp
import pytest
from django.urls import reverse

from tmc.identity.models import OrganisationSecurity, User
from tmc.identity.totp import STEP_SECONDS, _secret, totp_check, totp_enrolment_start
from tmc.lib.security_policy import PRESETS
from tmc.testing import Tenant


def _code(user: User, *, at: float | None = None) -> str:
    user.refresh_from_db()
    return pyotp.TOTP(_secret(user)).at(time.time() if at is None else at)


@pytest.fixture
def asvs(settings: Any) -> None:
    settings.TMC_SECURITY_POLICY = PRESETS["asvs"]


def test_asvs_preset_asks_for_an_authenticator_instead_of_a_second_password(
    tenant_a: Tenant, asvs: None
) -> None:
    """ASVS / NIST preset: TOTP, not a second password, opens control areas."""
    admin = tenant_a.administrator
    client = tenant_a.client_for(admin)

    first = client.get(reverse("identity:users"), follow=True)
    assert b"Set up your authenticator app" in first.content
    assert b"Second password" not in first.content

    enrolled = client.post(
        reverse("identity:second_factor"),
        {"code": _code(admin), "next": reverse("identity:users")},
    )
    assert enrolled.status_code == 302
    assert client.get(reverse("identity:users")).status_code == 200


def test_an_organisation_can_require_totp_on_top_of_the_second_password(
    tenant_a: Tenant,
) -> None:
    """Optional TOTP can be required per organisation for its managers."""
    OrganisationSecurity.objects.create(
        organisation=tenant_a.organisation, totp_required=True
    )
    controller = tenant_a.controller
    client = tenant_a.client_for(controller)
    client.post(reverse("identity:second_factor"), {"code": "000000"})  # enrol page
    client.post(reverse("identity:second_factor"), {"code": _code(controller)})
    client.post(reverse("identity:logout"))
    client = tenant_a.client_for(controller)

    page = client.get(reverse("identity:second_factor"))
    assert b"Second password" in page.content
    assert b"authenticator app" in page.content
    later = time.time() + STEP_SECONDS
    wrong_password = client.post(
        reverse("identity:second_factor"),
        {"second_password": "nope-nope-1", "code": _code(controller, at=later)},
    )
    assert wrong_password.status_code == 200
    assert client.get(reverse("identity:users")).status_code == 302


def test_the_secret_is_stored_sealed(tenant_a: Tenant, asvs: None) -> None:
    admin = tenant_a.administrator
    client = tenant_a.client_for(admin)
    client.get(reverse("identity:second_factor"))

    admin.refresh_from_db()
    assert admin.totp_secret.startswith("v1:")
    assert _secret(admin) not in admin.totp_secret


def test_a_code_cannot_be_used_twice(tenant_a: Tenant, asvs: None) -> None:
    admin = tenant_a.administrator
    tenant_a.client_for(admin).get(reverse("identity:second_factor"))
    admin.refresh_from_db()
    code = _code(admin)

    assert totp_check(admin, code)
    assert not totp_check(admin, code)


def test_wrong_codes_lock_the_second_factor(
    tenant_a: Tenant, asvs: None, settings: Any
) -> None:
    """The second factor has its own 5-attempt lockout."""
    settings.TMC_SECURITY_POLICY = dataclasses.replace(
        PRESETS["asvs"], second_password_attempts=5
    )
    admin = tenant_a.administrator
    client = tenant_a.client_for(admin)
    client.get(reverse("identity:second_factor"))
    client.post(reverse("identity:second_factor"), {"code": _code(admin)})
    client.post(reverse("identity:logout"))
    client = tenant_a.client_for(admin)

    for _ in range(5):
        client.post(reverse("identity:second_factor"), {"code": "123456"})
    right = client.post(
        reverse("identity:second_factor"),
        {"code": _code(admin, at=time.time() + STEP_SECONDS)},
    )

    admin.refresh_from_db()
    assert admin.second_password_locked_at is not None
    assert b"locked" in right.content
    assert client.get(reverse("identity:users")).status_code == 302


def test_the_secret_survives_a_master_key_rotation(
    tenant_a: Tenant, asvs: None
) -> None:
    """The secret is sealed under the master key itself, so rotating the
    master key must re-seal it, or every enrolled authenticator would stop
    working."""
    from tmc.accounts.encryption import master_key_rotate

    admin = tenant_a.administrator
    totp_enrolment_start(admin)
    before = _secret(admin)
    sealed_before = admin.totp_secret

    master_key_rotate()

    admin.refresh_from_db()
    assert admin.totp_secret != sealed_before
    assert _secret(admin) == before
    assert totp_check(admin, pyotp.TOTP(before).now())


def test_the_secret_opens_while_a_master_key_rotation_is_under_way(
    tenant_a: Tenant, asvs: None, settings: Any
) -> None:
    """Between the new master key being written and the secrets being
    re-sealed (or after a crash there), a log-in still works."""
    from tmc.lib.keys import master_key_replace

    admin = tenant_a.administrator
    totp_enrolment_start(admin)
    before = _secret(admin)

    master_key_replace(settings.TMC_HOME)

    admin.refresh_from_db()
    assert _secret(admin) == before
