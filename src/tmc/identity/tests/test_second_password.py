"""The second password that opens control areas for Controllers and Administrators."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from tmc.identity import sessions
from tmc.identity.models import Role, User, UserSession
from tmc.identity.services import second_password_set, user_create
from tmc.testing import PASSWORD, SECOND_PASSWORD, Tenant, signed_in_client

WRONG = "Wr0ng-Second-Guess"


def _asked_for_second_password(path: str) -> str:
    return f"{reverse('identity:second_factor')}?{urlencode({'next': path})}"


def _new_administrator(tenant: Tenant) -> User:
    """An Administrator who has not chosen a second password yet."""
    return user_create(
        organisation=tenant.organisation,
        username="acme-newadmin",
        email="newadmin@acme.example",
        password=PASSWORD,
        role=Role.ADMINISTRATOR,
    )


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


@pytest.mark.parametrize("role", ["controller", "administrator"])
def test_a_control_area_without_the_second_password_asks_for_it(
    tenant_a: Tenant, role: str
) -> None:
    """Policy: control areas need the second password (Controllers, Administrators)."""
    client = tenant_a.client_for(getattr(tenant_a, role))

    for path in ["/users/", "/messages/report/", "/activity/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == _asked_for_second_password(path)


def test_a_manager_without_a_second_password_is_asked_to_choose_one(
    tenant_a: Tenant,
) -> None:
    """Policy: each Controller and Administrator has a second password."""
    manager = _new_administrator(tenant_a)
    assert manager.second_password == ""
    client = signed_in_client(manager)

    response = client.get("/users/", follow=True)

    assert response.redirect_chain[-1][0] == _asked_for_second_password("/users/")
    assert "Choose a second password" in response.content.decode()

    chosen = client.post(
        reverse("identity:second_factor"),
        {
            "new_second_password": SECOND_PASSWORD,
            "confirm": SECOND_PASSWORD,
            "next": "/users/",
        },
    )
    assert chosen.status_code == 302
    assert chosen["Location"] == "/users/"
    stored = _fresh(manager).second_password
    assert stored != SECOND_PASSWORD
    assert check_password(SECOND_PASSWORD, stored)
    assert client.get("/users/").status_code == 200


def test_the_second_password_must_differ_from_the_log_in_password(
    tenant_a: Tenant,
) -> None:
    """Policy: the second password differs from the log-in password."""
    manager = _new_administrator(tenant_a)
    client = signed_in_client(manager)

    response = client.post(
        reverse("identity:second_factor"),
        {"new_second_password": PASSWORD, "confirm": PASSWORD, "next": "/users/"},
    )

    assert response.status_code == 200
    assert (
        "The second password must differ from your log-in password."
        in response.content.decode()
    )
    assert _fresh(manager).second_password == ""
    assert client.get("/users/")["Location"] == _asked_for_second_password("/users/")

    with pytest.raises(ValidationError) as refused:
        second_password_set(
            user=tenant_a.controller,
            new_password=PASSWORD,
            current=SECOND_PASSWORD,
            request=None,
        )
    assert "must differ" in " ".join(refused.value.messages)
    assert check_password(SECOND_PASSWORD, _fresh(tenant_a.controller).second_password)


def test_the_second_password_follows_the_password_rules(tenant_a: Tenant) -> None:
    """Policy: the second password follows the password rules too."""
    manager = _new_administrator(tenant_a)

    with pytest.raises(ValidationError):
        second_password_set(
            user=manager, new_password="short1", current=None, request=None
        )
    assert _fresh(manager).second_password == ""


def test_after_the_second_password_the_control_area_opens(tenant_a: Tenant) -> None:
    """Policy: the second password opens the control areas."""
    client = tenant_a.client_for(tenant_a.administrator)
    second_factor = reverse("identity:second_factor")

    wrong = client.post(second_factor, {"second_password": WRONG, "next": "/users/"})
    assert wrong.status_code == 200
    assert "That second password is not right." in wrong.content.decode()
    assert client.get("/users/").status_code == 302

    right = client.post(
        second_factor, {"second_password": SECOND_PASSWORD, "next": "/users/"}
    )
    assert right.status_code == 302
    assert right["Location"] == "/users/"
    assert client.get("/users/").status_code == 200


def test_the_log_in_password_does_not_open_control_areas(tenant_a: Tenant) -> None:
    """Policy: the second password is a separate secret from the log-in one."""
    client = tenant_a.client_for(tenant_a.controller)

    response = client.post(
        reverse("identity:second_factor"), {"second_password": PASSWORD}
    )

    assert response.status_code == 200
    assert client.get("/users/").status_code == 302


def test_the_second_password_window_ends_and_asks_again(tenant_a: Tenant) -> None:
    """Policy: the second password stays valid for 15 minutes, then is asked again."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    assert client.get("/users/").status_code == 200

    session = client.session
    session[sessions.SECOND_FACTOR_UNTIL] = time.time() - 1
    session.save()

    response = client.get("/users/")
    assert response.status_code == 302
    assert response["Location"] == _asked_for_second_password("/users/")


def test_the_second_password_stays_open_for_15_minutes_of_activity(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Policy: the second password lasts 15 minutes from the last control-area use."""
    clock = [time.time()]
    monkeypatch.setattr(sessions, "_now", lambda: clock[0])
    start = clock[0]
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    assert client.session[sessions.SECOND_FACTOR_UNTIL] == start + 15 * 60

    # Busy in control areas: every visit within 15 minutes keeps it open.
    for minutes in (14, 28, 42):
        clock[0] = start + minutes * 60
        assert client.get("/users/").status_code == 200, minutes

    # Fifteen minutes (and a second) without a control area: asked again.
    clock[0] = start + (42 + 15) * 60 + 1
    response = client.get("/users/")
    assert response.status_code == 302
    assert response["Location"] == _asked_for_second_password("/users/")


def test_the_second_password_expires_15_minutes_after_it_was_given(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Policy: the second password lasts 15 minutes without control-area use."""
    clock = [time.time()]
    monkeypatch.setattr(sessions, "_now", lambda: clock[0])
    start = clock[0]
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    clock[0] = start + 15 * 60 - 1
    assert client.get("/account/").status_code == 200  # signed in, not a control area
    clock[0] = start + 15 * 60 + 1
    assert client.get("/users/").status_code == 302


def test_five_wrong_second_passwords_lock_it(tenant_a: Tenant) -> None:
    """Policy: the second password locks after 5 failed attempts."""
    manager = tenant_a.administrator
    client = tenant_a.client_for(manager)
    second_factor = reverse("identity:second_factor")

    for _ in range(4):
        client.post(second_factor, {"second_password": WRONG})
    assert _fresh(manager).second_password_locked_at is None

    client.post(second_factor, {"second_password": WRONG})
    locked = _fresh(manager)
    assert locked.second_password_locked_at is not None

    right = client.post(second_factor, {"second_password": SECOND_PASSWORD})
    assert right.status_code == 200
    assert "locked" in right.content.decode()
    assert client.get("/users/").status_code == 302

    # Its own lockout: the log-in itself is not locked.
    assert locked.locked_at is None
    assert locked.failed_login_attempts == 0
    assert signed_in_client(manager).get("/account/").status_code == 200


def test_a_controller_unlocks_a_locked_second_password(tenant_a: Tenant) -> None:
    """Policy: a locked second password is unlocked by the Controller."""
    manager = tenant_a.administrator
    client = tenant_a.client_for(manager)
    second_factor = reverse("identity:second_factor")
    for _ in range(5):
        client.post(second_factor, {"second_password": WRONG})
    assert _fresh(manager).second_password_locked_at is not None

    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)
    response = controller.post(f"/users/{manager.pk}/unlock/")

    assert response.status_code == 302
    unlocked = _fresh(manager)
    assert unlocked.second_password_locked_at is None
    assert unlocked.second_password_failures == 0
    assert (
        client.post(second_factor, {"second_password": SECOND_PASSWORD}).status_code
        == 302
    )
    assert client.get("/users/").status_code == 200


def test_an_administrator_cannot_unlock(tenant_a: Tenant) -> None:
    """Policy: unlocking is the Controller's."""
    stranger = Client()
    for _ in range(5):
        stranger.post("/login/", {"username": "acme-user", "password": WRONG})
    assert _fresh(tenant_a.user).locked_at is not None
    administrator = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = administrator.post(f"/users/{tenant_a.user.pk}/unlock/")

    assert response.status_code == 403
    assert _fresh(tenant_a.user).locked_at is not None


def test_a_remembered_device_never_carries_the_second_password(
    tenant_a: Tenant,
) -> None:
    """Policy: remembered devices sign in without the second password."""
    first = Client()
    response = first.post(
        "/login/",
        {
            "username": tenant_a.controller.username,
            "password": PASSWORD,
            "remember": "on",
        },
    )
    assert response.status_code == 302
    token = response.cookies[sessions.DEVICE_COOKIE].value
    first.post(reverse("identity:second_factor"), {"second_password": SECOND_PASSWORD})
    assert first.get("/users/").status_code == 200

    device = Client()
    device.cookies[sessions.DEVICE_COOKIE] = token
    response = device.get("/users/")

    assert response.status_code == 302
    assert response["Location"] == _asked_for_second_password("/users/")
    assert sessions.SECOND_FACTOR_UNTIL not in device.session
    assert device.get("/account/").status_code == 200
    assert UserSession.objects.filter(
        user=tenant_a.controller, via_device=True
    ).exists()


def test_a_user_is_not_offered_a_second_password(tenant_a: Tenant) -> None:
    """Policy: the second password is for Controllers and Administrators only."""
    client = tenant_a.client_for(tenant_a.user)

    shown = client.get(reverse("identity:second_factor"))
    posted = client.post(
        reverse("identity:second_factor"),
        {"new_second_password": SECOND_PASSWORD, "confirm": SECOND_PASSWORD},
    )

    for response in (shown, posted):
        assert response.status_code == 302
        assert response["Location"] == reverse("accounts:dashboard")
    assert _fresh(tenant_a.user).second_password == ""
    assert client.get("/users/").status_code == 403


def test_a_user_has_no_second_password_page_to_set_one(tenant_a: Tenant) -> None:
    """Policy: the second password is for Controllers and Administrators only."""
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("identity:second_password_change"),
        {"new_second_password": SECOND_PASSWORD, "confirm": SECOND_PASSWORD},
    )

    assert response.status_code == 302
    assert _fresh(tenant_a.user).second_password == ""


def test_the_log_in_password_cannot_become_the_second_password(
    tenant_a: Tenant,
) -> None:
    """Policy: the second password differs from the log-in password, both ways."""
    from tmc.identity.services import password_change

    manager = _fresh(tenant_a.administrator)

    with pytest.raises(ValidationError):
        password_change(
            user=manager, new_password=SECOND_PASSWORD, current_password=PASSWORD
        )

    assert _fresh(manager).check_password(PASSWORD)


def test_guessing_the_current_second_password_on_the_change_form_counts(
    tenant_a: Tenant,
) -> None:
    """Policy: the second password locks after 5 failed attempts, on any form."""
    manager = tenant_a.administrator
    client = tenant_a.client_for(manager)
    change = reverse("identity:second_password_change")
    new = "N3w-Second-Gate"

    for _ in range(5):
        response = client.post(
            change,
            {
                "current_second_password": WRONG,
                "new_second_password": new,
                "confirm": new,
            },
        )
        assert response.status_code == 200

    assert _fresh(manager).second_password_locked_at is not None
    # Once locked, the right one confirms nothing and changes nothing.
    client.post(
        change,
        {
            "current_second_password": SECOND_PASSWORD,
            "new_second_password": new,
            "confirm": new,
        },
    )
    assert check_password(SECOND_PASSWORD, _fresh(manager).second_password)
