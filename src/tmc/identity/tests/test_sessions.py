"""Sessions: new ids on privilege changes, idle time-out, "my sessions", devices.

Docstrings name the clause each test proves: "C<n>" is clause n of the
published policy's "Clients and Users Security" (docs/security-policy.md);
"ASVS" marks session rules the platform adds from OWASP ASVS 5.0.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import timedelta
from importlib import import_module
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tmc.audit.models import Event
from tmc.identity.models import Permission, RememberedDevice, Role, User, UserSession
from tmc.identity.sessions import DEVICE_COOKIE, LAST_ACTIVITY
from tmc.testing import PASSWORD, SECOND_PASSWORD, Tenant

DASHBOARD = reverse("accounts:dashboard")
LOGIN = reverse("identity:login")


def _store(key: str | None = None) -> SessionBase:
    engine = import_module(django_settings.SESSION_ENGINE)
    store: SessionBase = engine.SessionStore(key)
    return store


def _session_id(client: Client) -> str:
    value: str = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return value


def _set_idle(client: Client, seconds: float) -> float:
    session = client.session
    last = time.time() - seconds
    session[LAST_ACTIVITY] = last
    session.save()
    return last


def _last_activity(client: Client) -> float:
    return float(client.session[LAST_ACTIVITY])


def _signed_in(client: Client) -> bool:
    return client.get(DASHBOARD).status_code == 200


# --- new session ids -------------------------------------------------------------


def test_logging_in_gives_a_new_session_id(tenant_a: Tenant) -> None:
    """ASVS: a new session id at log-in, so a planted one is worthless."""
    client = Client()
    planted = client.session
    planted["planted"] = True
    planted.save()
    before = _session_id(client)

    response = client.post(LOGIN, {"username": "acme-user", "password": PASSWORD})

    assert response.status_code == 302
    assert _session_id(client) != before
    assert not _store().exists(before)
    assert _signed_in(client)
    attacker = Client()
    attacker.cookies[django_settings.SESSION_COOKIE_NAME] = before
    assert not _signed_in(attacker)


def test_the_second_password_gives_a_new_session_id(tenant_a: Tenant) -> None:
    """C3 with ASVS: opening the control areas changes the session id."""
    client = tenant_a.client_for(tenant_a.controller)
    before = _session_id(client)

    response = client.post(
        reverse("identity:second_factor"), {"second_password": SECOND_PASSWORD}
    )

    assert response.status_code == 302
    assert _session_id(client) != before
    assert not _store().exists(before)
    assert client.get(reverse("identity:users")).status_code == 200


def _user_form(user: User, **overrides: Any) -> dict[str, Any]:
    """What the user edit form posts to leave ``user`` as is, but ``overrides``."""
    data: dict[str, Any] = {
        "full_name": user.full_name,
        "email": user.email,
        "role": user.role,
        "permissions": sorted(user.permissions()),
        "daily_message_limit": "",
        "monthly_message_limit": "",
        "is_active": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "overrides",
    [
        {"permissions": [Permission.SEND_BULK.value, Permission.EXPORT.value]},
        {"role": Role.ADMINISTRATOR.value},
        {"permissions": []},
    ],
    ids=["permission granted", "role raised", "permission withdrawn"],
)
def test_a_change_of_rights_ends_the_users_sessions(
    tenant_a: Tenant, overrides: dict[str, Any]
) -> None:
    """C4: "session id rotates on privilege change", for grants as well.

    A session opened before the change must not go on under the same id with
    the new rights; the user logs in again and gets a new one.
    """
    there = tenant_a.client_for(tenant_a.user)
    before = _session_id(there)
    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = controller.post(
        reverse("identity:user_edit", args=[tenant_a.user.pk]),
        _user_form(tenant_a.user, **overrides),
    )

    assert response.status_code == 302
    assert not _store().exists(before)
    assert not _signed_in(there)
    session = UserSession.objects.get(user=tenant_a.user)
    assert session.ended_at is not None
    assert session.end_reason == "rights changed"
    assert _signed_in(controller)


def test_a_change_that_moves_no_rights_keeps_the_users_sessions(
    tenant_a: Tenant,
) -> None:
    """C4: a rename or a new limit is no privilege change; the session stays."""
    there = tenant_a.client_for(tenant_a.user)
    before = _session_id(there)
    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = controller.post(
        reverse("identity:user_edit", args=[tenant_a.user.pk]),
        _user_form(tenant_a.user, full_name="Renamed", daily_message_limit="5"),
    )

    assert response.status_code == 302
    assert _store().exists(before)
    assert _signed_in(there)


# --- idle time-out ---------------------------------------------------------------


def test_a_session_idle_for_longer_than_20_minutes_is_logged_out(
    tenant_a: Tenant,
) -> None:
    """C4: "the user session will automatically time out after 20 minutes"."""
    client = tenant_a.client_for(tenant_a.user)
    _set_idle(client, 21 * 60)

    response = client.get(reverse("messaging:history"))

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == LOGIN
    assert parse_qs(location.query)["next"] == [reverse("messaging:history")]
    assert not _signed_in(client)
    tracked = UserSession.objects.get(user=tenant_a.user)
    assert tracked.ended_at is not None
    assert tracked.end_reason == "timeout"
    assert Event.objects.filter(action="logout.timeout", actor=tenant_a.user).exists()


def test_a_session_idle_for_less_than_20_minutes_stays(tenant_a: Tenant) -> None:
    """C4: the time-out is 20 minutes of inactivity, not less."""
    client = tenant_a.client_for(tenant_a.user)
    _set_idle(client, 19 * 60)

    response = client.get(reverse("messaging:history"))

    assert response.status_code == 200
    assert _signed_in(client)


def test_an_idle_htmx_request_is_sent_to_the_login_page(tenant_a: Tenant) -> None:
    """C4: a timed-out page's htmx request is told to go to the log-in page."""
    client = tenant_a.client_for(tenant_a.user)
    _set_idle(client, 21 * 60)
    page = "http://testserver" + reverse("messaging:history")

    response = client.get(
        reverse("messaging:history"),
        headers={"HX-Request": "true", "HX-Current-URL": page},
    )

    assert response.status_code == 204
    redirect = urlsplit(response["HX-Redirect"])
    assert redirect.path == LOGIN
    (destination,) = parse_qs(redirect.query)["next"]
    assert urlsplit(destination).path == reverse("messaging:history")
    assert not _signed_in(client)


def test_background_requests_are_not_activity(tenant_a: Tenant) -> None:
    """C4: "inactivity": a page polling by itself does not keep it alive."""
    client = tenant_a.client_for(tenant_a.user)
    last = _set_idle(client, 10 * 60)

    background = client.get(
        reverse("messaging:history"),
        headers={"HX-Request": "true", "X-TMC-Background": "1"},
    )

    assert background.status_code == 200
    assert _last_activity(client) == last

    client.get(reverse("messaging:history"))

    assert _last_activity(client) >= time.time() - 60


def test_background_polling_cannot_outlive_the_idle_limit(tenant_a: Tenant) -> None:
    """C4: polling for 20 minutes still ends an untouched session."""
    client = tenant_a.client_for(tenant_a.user)
    _set_idle(client, 19 * 60)
    poll = {"HX-Request": "true", "X-TMC-Background": "1"}
    assert client.get(reverse("messaging:history"), headers=poll).status_code == 200

    session = client.session
    session[LAST_ACTIVITY] = float(session[LAST_ACTIVITY]) - 2 * 60
    session.save()
    response = client.get(reverse("messaging:history"), headers=poll)

    assert response.status_code == 204
    assert urlsplit(response["HX-Redirect"]).path == LOGIN


def test_the_stay_logged_in_button_counts_as_activity(tenant_a: Tenant) -> None:
    """C4: the idle warning's "Stay logged in" restarts the 20 minutes."""
    client = tenant_a.client_for(tenant_a.user)
    _set_idle(client, 19 * 60)

    response = client.post(reverse("identity:keepalive"))

    assert response.status_code == 204
    assert _last_activity(client) >= time.time() - 60


def test_the_idle_limit_comes_from_the_configured_policy(
    tenant_a: Tenant, settings: Any
) -> None:
    """C4: the minutes come from TMC_SESSION_IDLE_MINUTES via the policy."""
    client = tenant_a.client_for(tenant_a.user)
    _set_idle(client, 90)
    assert client.get(reverse("messaging:history")).status_code == 200

    settings.TMC_SECURITY_POLICY = dataclasses.replace(
        settings.TMC_SECURITY_POLICY, idle_minutes=1
    )
    _set_idle(client, 90)
    response = client.get(reverse("messaging:history"))

    assert response.status_code == 302
    assert urlsplit(response["Location"]).path == LOGIN
    assert not _signed_in(client)


# --- my sessions -------------------------------------------------------------------


def test_a_user_sees_both_sessions_and_can_end_the_other(tenant_a: Tenant) -> None:
    """ASVS: a user sees where they are logged in and can end a session."""
    here = tenant_a.client_for(tenant_a.user)
    there = tenant_a.client_for(tenant_a.user)
    mine, other = _two_sessions(here, tenant_a.user)

    page = here.get(reverse("identity:account")).content.decode()
    assert page.count('<tr id="session-') == 2
    assert f'id="session-{mine.pk}"' in page
    assert f'id="session-{other.pk}"' in page
    end_other = reverse("identity:session_end", args=[other.pk])
    assert f'action="{end_other}"' in page
    assert reverse("identity:session_end", args=[mine.pk]) not in page

    response = here.post(reverse("identity:session_end", args=[other.pk]))

    assert response.status_code == 302
    other.refresh_from_db()
    assert other.ended_at is not None
    after = there.get(DASHBOARD)
    assert after.status_code == 302
    assert urlsplit(after["Location"]).path == LOGIN
    assert not _signed_in(there)
    assert _signed_in(here)
    assert Event.objects.filter(action="session.ended", actor=tenant_a.user).exists()


def _two_sessions(here: Client, user: User) -> tuple[UserSession, UserSession]:
    sessions = list(UserSession.objects.filter(user=user, ended_at__isnull=True))
    assert len(sessions) == 2
    here_key = _store(_session_id(here)).get("tmc_sid")
    mine = next(s for s in sessions if s.key == here_key)
    other = next(s for s in sessions if s.key != here_key)
    return mine, other


def test_a_user_cannot_end_another_users_session(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """ASVS: a user ends only their own sessions, whatever id they send."""
    colleague = tenant_a.client_for(tenant_a.administrator)
    outsider = tenant_b.client_for(tenant_b.user)
    attacker = tenant_a.client_for(tenant_a.user)
    targets = [
        UserSession.objects.get(user=tenant_a.administrator),
        UserSession.objects.get(user=tenant_b.user),
    ]

    for target in targets:
        response = attacker.post(reverse("identity:session_end", args=[target.pk]))
        assert response.status_code == 404
        target.refresh_from_db()
        assert target.ended_at is None

    assert _signed_in(colleague)
    assert _signed_in(outsider)


# --- remembered devices -------------------------------------------------------------


def _remembered(user: User) -> tuple[Client, str]:
    client = Client()
    response = client.post(
        LOGIN, {"username": user.username, "password": PASSWORD, "remember": "on"}
    )
    assert response.status_code == 302
    return client, response.cookies[DEVICE_COOKIE].value


def _device_only(token: str) -> Client:
    client = Client()
    client.cookies[DEVICE_COOKIE] = token
    return client


def test_remember_me_sets_an_http_only_device_cookie(tenant_a: Tenant) -> None:
    """C8: the "Remember" option leaves a cookie scripts cannot read."""
    response = Client().post(
        LOGIN, {"username": "acme-user", "password": PASSWORD, "remember": "on"}
    )

    cookie = response.cookies[DEVICE_COOKIE]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 30 * 24 * 60 * 60
    assert RememberedDevice.objects.filter(user=tenant_a.user).count() == 1


def test_logging_in_without_remember_me_sets_no_device_cookie(
    tenant_a: Tenant,
) -> None:
    """C8: devices are remembered only when the user chooses "Remember"."""
    response = Client().post(LOGIN, {"username": "acme-user", "password": PASSWORD})

    assert DEVICE_COOKIE not in response.cookies
    assert not RememberedDevice.objects.exists()


def test_a_remembered_device_signs_in_without_the_password(tenant_a: Tenant) -> None:
    """C8: "Remember" gives access "without following the login process"."""
    _, token = _remembered(tenant_a.user)
    device = _device_only(token)

    response = device.get(DASHBOARD)

    assert response.status_code == 200
    assert b"<h1>Acme</h1>" in response.content
    assert device.get(reverse("messaging:history")).status_code == 200
    assert Event.objects.filter(action="login.device", actor=tenant_a.user).exists()
    assert UserSession.objects.filter(user=tenant_a.user, via_device=True).count() == 1


def test_a_remembered_device_does_not_open_control_areas(tenant_a: Tenant) -> None:
    """C3: control areas still need the second password on a remembered device."""
    _, token = _remembered(tenant_a.administrator)
    device = _device_only(token)

    response = device.get(reverse("identity:users"))

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == reverse("identity:second_factor")
    assert parse_qs(location.query)["next"] == [reverse("identity:users")]


def test_the_user_can_forget_a_remembered_device(tenant_a: Tenant) -> None:
    """C8: the user stays responsible for, and can withdraw, a remembered device."""
    _, token = _remembered(tenant_a.user)
    device = RememberedDevice.objects.get(user=tenant_a.user)
    owner = tenant_a.client_for(tenant_a.user)

    response = owner.post(reverse("identity:device_revoke", args=[device.pk]))

    assert response.status_code == 302
    assert not _signed_in(_device_only(token))
    assert Event.objects.filter(action="device.revoked", actor=tenant_a.user).exists()


def test_forgetting_a_device_signs_out_the_browser_it_signed_in(
    tenant_a: Tenant,
) -> None:
    """C8: a forgotten device stops working, even with a session already open."""
    _, token = _remembered(tenant_a.user)
    browser = _device_only(token)
    assert _signed_in(browser)
    device = RememberedDevice.objects.get(user=tenant_a.user)
    owner = tenant_a.client_for(tenant_a.user)

    owner.post(reverse("identity:device_revoke", args=[device.pk]))

    assert not _signed_in(browser)


def test_an_administrator_can_forget_a_users_device(tenant_a: Tenant) -> None:
    """C1: an Administrator manages users, including their remembered devices."""
    _, token = _remembered(tenant_a.user)
    device = RememberedDevice.objects.get(user=tenant_a.user)
    administrator = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = administrator.post(
        reverse("identity:user_device_revoke", args=[tenant_a.user.pk, device.pk])
    )

    assert response.status_code == 302
    assert not _signed_in(_device_only(token))


def test_another_organisation_cannot_forget_a_device(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """C1: an Administrator manages only their own organisation's users."""
    _, token = _remembered(tenant_a.user)
    device = RememberedDevice.objects.get(user=tenant_a.user)
    outsider = tenant_b.client_for(tenant_b.administrator, second_factor=True)

    response = outsider.post(
        reverse("identity:user_device_revoke", args=[tenant_a.user.pk, device.pk])
    )

    assert response.status_code == 404
    assert _signed_in(_device_only(token))


def test_a_device_unused_for_more_than_30_days_no_longer_signs_in(
    tenant_a: Tenant,
) -> None:
    """C8: a remembered device lapses 30 days after its last use."""
    _, stale_token = _remembered(tenant_a.user)
    _, recent_token = _remembered(tenant_a.user)
    stale = RememberedDevice.objects.get(
        token_hash=hashlib.sha256(stale_token.encode()).hexdigest()
    )
    recent = RememberedDevice.objects.get(
        token_hash=hashlib.sha256(recent_token.encode()).hexdigest()
    )
    now = timezone.now()
    RememberedDevice.objects.filter(pk=stale.pk).update(
        last_used_at=now - timedelta(days=31)
    )
    RememberedDevice.objects.filter(pk=recent.pk).update(
        last_used_at=now - timedelta(days=29)
    )

    assert not _signed_in(_device_only(stale_token))
    assert _signed_in(_device_only(recent_token))
    stale.refresh_from_db()
    assert stale.revoked_at is not None


def test_logging_out_forgets_the_device(tenant_a: Tenant) -> None:
    """C8: logging out on purpose ends "Remember" on that device."""
    client, token = _remembered(tenant_a.user)

    response = client.post(reverse("identity:logout"))

    assert response.status_code == 302
    assert response.cookies[DEVICE_COOKIE]["max-age"] == 0
    assert RememberedDevice.objects.get().revoked_at is not None
    assert not _signed_in(_device_only(token))


def test_only_a_sha256_of_the_device_token_is_stored(tenant_a: Tenant) -> None:
    """DB7: the device token, a credential, is stored only as its SHA-256."""
    _, token = _remembered(tenant_a.user)
    _device_only(token).get(DASHBOARD)

    device = RememberedDevice.objects.get()
    assert device.token_hash == hashlib.sha256(token.encode("ascii")).hexdigest()
    assert len(device.token_hash) == 64
    for model in (RememberedDevice, UserSession, Event):
        for row in model.objects.values():
            assert token not in repr(row)


def test_a_new_password_forgets_remembered_devices(tenant_a: Tenant) -> None:
    """ASVS: changing the password ends every way in that used the old one."""
    _, token = _remembered(tenant_a.user)
    owner = tenant_a.client_for(tenant_a.user)
    new = "Fresh-Kettle-Walk-42"

    response = owner.post(
        reverse("identity:password_change"),
        {"current_password": PASSWORD, "new_password": new, "confirm": new},
    )

    assert response.status_code == 302
    assert not _signed_in(_device_only(token))
