"""Screens: a refused form shows its errors, keeps what was typed, and
never sends a password back to the browser.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from django.test import Client
from django.urls import reverse

from tmc.identity.models import Permission, Role, User
from tmc.testing import PASSWORD, SECOND_PASSWORD, Tenant

TYPED_PASSWORD = "Typed-Secret-2468"  # nosec B105


class _Inputs(HTMLParser):
    """Every ``<input>`` of a page, by name: its type and its value."""

    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, tuple[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "input":
            return
        values = dict(attrs)
        name = values.get("name")
        if name:
            self.found[name] = (values.get("type") or "text", values.get("value") or "")


def _inputs(response: Any) -> dict[str, tuple[str, str]]:
    parser = _Inputs()
    parser.feed(response.content.decode())
    return parser.found


def _no_password_sent_back(response: Any, *typed: str) -> None:
    page = response.content.decode()
    for name, (kind, value) in _inputs(response).items():
        if kind == "password":
            assert value == "", f"{name} was sent back filled in"
    for secret in typed:
        assert secret not in page


def test_a_refused_new_user_keeps_the_typed_username_email_and_name(
    tenant_a: Tenant,
) -> None:
    """Screens: "keep what the user typed (never the passwords)", adding a user."""
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(
        reverse("identity:user_new"),
        {
            # Taken already: the service refuses it after the form is valid.
            "username": tenant_a.user.username,
            "full_name": "Typed Person",
            "email": "typed@acme.example",
            "mobile": "07400 123456",
            "role": Role.USER.value,
            "permissions": [Permission.SEND_BULK.value],
            "is_active": "on",
        },
    )

    assert response.status_code == 200
    assert "That username is taken." in response.content.decode()
    inputs = _inputs(response)
    assert inputs["username"][1] == tenant_a.user.username
    assert inputs["full_name"][1] == "Typed Person"
    assert inputs["email"][1] == "typed@acme.example"
    assert inputs["mobile"][1] == "07400 123456"
    _no_password_sent_back(response)
    assert User.objects.filter(email="typed@acme.example").count() == 0


def test_a_refused_password_change_sends_no_password_back(tenant_a: Tenant) -> None:
    """Screens: a refused password change re-renders with every input empty."""
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("identity:password_change"),
        {
            "current_password": PASSWORD,
            "new_password": TYPED_PASSWORD,
            "confirm": TYPED_PASSWORD + "x",
        },
    )

    assert response.status_code == 200
    assert "The two entries differ." in response.content.decode()
    inputs = _inputs(response)
    assert {"current_password", "new_password", "confirm"} <= inputs.keys()
    _no_password_sent_back(response, PASSWORD, TYPED_PASSWORD)
    assert User.objects.get(pk=tenant_a.user.pk).check_password(PASSWORD)


def test_a_refused_log_in_keeps_the_username_only(tenant_a: Tenant) -> None:
    """Screens: the log-in page keeps the username, never the password."""
    response = Client().post(
        reverse("identity:login"),
        {"username": tenant_a.user.username, "password": TYPED_PASSWORD},
    )

    assert response.status_code == 200
    assert _inputs(response)["username"][1] == tenant_a.user.username
    _no_password_sent_back(response, TYPED_PASSWORD)


def test_a_refused_second_password_change_sends_no_password_back(
    tenant_a: Tenant,
) -> None:
    """Screens: the second-password form, refused, keeps no secret either."""
    client = tenant_a.client_for(tenant_a.administrator)

    response = client.post(
        reverse("identity:second_password_change"),
        {
            "current_second_password": SECOND_PASSWORD,
            "new_second_password": TYPED_PASSWORD,
            "confirm": TYPED_PASSWORD + "x",
        },
    )

    assert response.status_code == 200
    assert "The two entries differ." in response.content.decode()
    _no_password_sent_back(response, SECOND_PASSWORD, TYPED_PASSWORD)
