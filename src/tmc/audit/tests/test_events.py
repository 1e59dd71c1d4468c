"""Every action the platform offers leaves exactly one event, attributed right.

C11: "logs record all user activities including login, actions, changes and
messages". Each row drives one action the way a person does (the pages) or
the way the platform does (the services), then finds its one event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tmc.audit.models import ActorKind, Event
from tmc.identity.models import RememberedDevice, User
from tmc.identity.services import password_change
from tmc.identity.sessions import DEVICE_COOKIE, LAST_ACTIVITY
from tmc.messaging.models import Message
from tmc.testing import PASSWORD, SECOND_PASSWORD, SENDER, Tenant

WRONG = "Wrong-passw0rd"
NEW_PASSWORD = "Fresh-Kettle-Walk-42"
BODY = "Secret plans for Tuesday"
NUMBER = "07400 123456"


@dataclass(frozen=True)
class Expected:
    action: str
    actor: Any
    target: Any
    kind: str = ActorKind.USER


def _login(tenant: Tenant) -> Expected:
    Client().post("/login/", {"username": "acme-user", "password": PASSWORD})
    return Expected("login.succeeded", tenant.user, tenant.user)


def _login_failure(tenant: Tenant) -> Expected:
    Client().post("/login/", {"username": "acme-user", "password": WRONG})
    return Expected("login.failed", tenant.user, tenant.user)


def _lockout(tenant: Tenant) -> Expected:
    for _ in range(5):
        Client().post("/login/", {"username": "acme-user", "password": WRONG})
    return Expected("user.locked", tenant.user, tenant.user)


def _unlock(tenant: Tenant) -> Expected:
    User.objects.filter(pk=tenant.user.pk).update(failed_login_attempts=5)
    controller = tenant.client_for(tenant.controller, second_factor=True)
    controller.post(reverse("identity:user_unlock", args=[tenant.user.pk]))
    return Expected("user.unlocked", tenant.controller, tenant.user)


def _device_use(tenant: Tenant) -> Expected:
    response = Client().post(
        "/login/", {"username": "acme-user", "password": PASSWORD, "remember": "on"}
    )
    device = Client()
    device.cookies[DEVICE_COOKIE] = response.cookies[DEVICE_COOKIE].value
    device.get(reverse("accounts:dashboard"))
    return Expected("login.device", tenant.user, RememberedDevice.objects.get())


def _second_factor_use(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.administrator)
    client.post(reverse("identity:second_factor"), {"second_password": SECOND_PASSWORD})
    return Expected("second_factor.used", tenant.administrator, tenant.administrator)


def _second_factor_lock(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.administrator)
    for _ in range(5):
        client.post(reverse("identity:second_factor"), {"second_password": WRONG})
    return Expected("second_factor.locked", tenant.administrator, tenant.administrator)


def _logout(tenant: Tenant) -> Expected:
    tenant.client_for(tenant.user).post(reverse("identity:logout"))
    return Expected("logout.logout", tenant.user, tenant.user)


def _timeout(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.user)
    session = client.session
    session[LAST_ACTIVITY] = time.time() - 21 * 60
    session.save()
    client.get(reverse("messaging:history"))
    return Expected("logout.timeout", tenant.user, tenant.user)


def _user_form(tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    return {
        "username": "acme-newbie",
        "full_name": "New Person",
        "email": "newbie@acme.example",
        "role": "user",
        "permissions": ["can_send_bulk"],
        "daily_message_limit": "",
        "monthly_message_limit": "",
        "is_active": "on",
        **overrides,
    }


def _user_create(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.administrator, second_factor=True)
    client.post(reverse("identity:user_new"), _user_form(tenant))
    return Expected(
        "user.created", tenant.administrator, User.objects.get(username="acme-newbie")
    )


def _user_update(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.controller, second_factor=True)
    client.post(
        reverse("identity:user_edit", args=[tenant.user.pk]),
        _user_form(tenant, username="acme-user", full_name="Renamed", email="u@a.ex"),
    )
    return Expected("user.updated", tenant.controller, tenant.user)


def _permission_change(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.controller, second_factor=True)
    client.post(
        reverse("identity:user_edit", args=[tenant.user.pk]),
        _user_form(
            tenant, username="acme-user", email=tenant.user.email, permissions=[]
        ),
    )
    return Expected("user.permissions_changed", tenant.controller, tenant.user)


def _security_settings(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.controller, second_factor=True)
    client.post(
        reverse("identity:organisation_security"),
        {
            "password_min_length": 12,
            "password_history": 5,
            "password_require_letters_and_digits": "on",
            "idle_minutes": 15,
            "lockout_attempts": 5,
            "second_password_required": "on",
            "second_password_window_minutes": 15,
            "second_password_attempts": 5,
            "device_token_days": 30,
        },
    )
    return Expected(
        "organisation.security_updated", tenant.controller, tenant.organisation
    )


def _message_send(tenant: Tenant) -> Expected:
    tenant.client_for(tenant.user).post(
        reverse("messaging:compose"),
        {"recipient": NUMBER, "body": BODY, "sender": SENDER},
    )
    return Expected("message.sent", tenant.user, Message.objects.get())


def _password_change(tenant: Tenant) -> Expected:
    tenant.client_for(tenant.user).post(
        reverse("identity:password_change"),
        {
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm": NEW_PASSWORD,
        },
    )
    return Expected("password.changed", tenant.user, tenant.user)


def _password_reset(tenant: Tenant) -> Expected:
    password_change(
        user=tenant.user,
        new_password=NEW_PASSWORD,
        current_password=None,
        reason="reset",
    )
    return Expected("password.reset", tenant.user, tenant.user)


def _reset_request(tenant: Tenant) -> Expected:
    Client().post(reverse("identity:password_reset"), {"email": tenant.user.email})
    return Expected(
        "password.reset_requested", None, tenant.user, kind=ActorKind.ANONYMOUS
    )


def _export(tenant: Tenant) -> Expected:
    client = tenant.client_for(tenant.controller, second_factor=True)
    response = client.get(reverse("audit:activity_csv"))
    b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return Expected("activity.exported", tenant.controller, tenant.organisation)


ACTIONS: dict[str, Callable[[Tenant], Expected]] = {
    "log-in": _login,
    "failed log-in": _login_failure,
    "lockout": _lockout,
    "unlock": _unlock,
    "remembered device used": _device_use,
    "second password used": _second_factor_use,
    "second password locked": _second_factor_lock,
    "log-out": _logout,
    "time-out": _timeout,
    "user created": _user_create,
    "user updated": _user_update,
    "permissions changed": _permission_change,
    "security settings changed": _security_settings,
    "message sent": _message_send,
    "password changed": _password_change,
    "password reset": _password_reset,
    "password reset requested": _reset_request,
    "activity exported": _export,
}


@pytest.mark.parametrize("name", list(ACTIONS))
def test_each_action_records_one_event_with_its_actor_and_target(
    tenant_a: Tenant, tenant_b: Tenant, name: str
) -> None:
    """C11: one event per action, in the acting organisation, naming who and what."""
    since = Event.objects.order_by("-id").values_list("id", flat=True).first() or 0

    expected = ACTIONS[name](tenant_a)

    events = list(Event.objects.filter(id__gt=since, action=expected.action))
    assert len(events) == 1, [e.action for e in Event.objects.filter(id__gt=since)]
    (event,) = events
    assert event.organisation_id == tenant_a.organisation.pk
    assert event.chain == f"org:{tenant_a.organisation.pk}"
    assert event.actor_kind == expected.kind
    if expected.actor is None:
        assert event.actor_id is None
    else:
        assert event.actor_id == expected.actor.pk
        assert event.actor_ref == str(expected.actor.pk)
        assert event.actor_label == f"user:{expected.actor.username}"
    assert event.target_type == type(expected.target).__name__.lower()
    assert event.target_id == str(expected.target.pk)
    assert not Event.objects.filter(
        id__gt=since, organisation=tenant_b.organisation
    ).exists()


def test_a_sent_message_is_logged_by_ids_and_counts_only(tenant_a: Tenant) -> None:
    """C11 with DB rules: "not bodies", and no full mobile number."""
    _message_send(tenant_a)

    event = Event.objects.get(action="message.sent")
    message = Message.objects.get()
    assert event.details == {
        "message": message.pk,
        "sender": message.sender,
        "parts": 1,
        "credits": 1,
        "encoding": "GSM-7",
    }
    row = repr(Event.objects.filter(pk=event.pk).values().get())
    assert BODY not in row
    assert message.recipient not in row
    assert "7400123456" not in row


def test_a_web_event_records_where_it_came_from(tenant_a: Tenant) -> None:
    """C11: who, when and from where: address, browser and request id."""
    Client(HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="203.0.113.9").post(
        "/login/",
        {"username": "acme-user", "password": PASSWORD},
        HTTP_X_REQUEST_ID="req-0123456789",
    )

    event = Event.objects.get(action="login.succeeded")
    assert (event.ip_address, event.user_agent, event.request_id) == (
        "203.0.113.9",
        "Firefox/140",
        "req-0123456789",
    )
