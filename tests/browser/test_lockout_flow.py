"""Lockout, unlock by the Controller behind the second password, log-in again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tmc.identity.models import User
from tmc.testing import PASSWORD, SECOND_PASSWORD, Tenant

pytestmark = pytest.mark.browser

GENERIC = "Please enter a correct username and password"


def _log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def test_lockout_then_unlock_behind_the_second_password(
    tenant_a: Tenant, live_server: Any, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    base = live_server.url
    staff_member = new_page()
    for _ in range(5):
        _log_in(staff_member, base, "acme-user", "Wrong-passw0rd")
        expect(staff_member.get_by_role("alert")).to_contain_text(GENERIC)
    _log_in(staff_member, base, "acme-user", PASSWORD)
    expect(staff_member.get_by_role("alert")).to_contain_text("locked")
    assert User.objects.get(username="acme-user").locked_at is not None

    controller = new_page()
    _log_in(controller, base, "acme-controller", PASSWORD)
    controller.get_by_role("link", name="Users").click()
    expect(controller.get_by_role("heading", name="Second password")).to_be_visible()
    controller.get_by_label("Second password").fill("not-it-1")
    controller.get_by_role("button", name="Continue").click()
    expect(controller.get_by_text("That second password is not right.")).to_be_visible()
    controller.get_by_label("Second password").fill(SECOND_PASSWORD)
    controller.get_by_role("button", name="Continue").click()

    row = controller.locator(f"#user-{tenant_a.user.pk}")
    expect(row).to_contain_text("Locked")
    row.get_by_role("button", name="Unlock acme-user").click()
    expect(controller.get_by_role("status")).to_contain_text("acme-user is unlocked")
    expect(row).to_contain_text("Active")

    _log_in(staff_member, base, "acme-user", PASSWORD)
    expect(staff_member.get_by_role("heading", name="Acme")).to_be_visible()
