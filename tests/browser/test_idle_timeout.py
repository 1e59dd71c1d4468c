"""The idle warning, the time-out, and the draft that survives it."""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings

from tmc.identity.sessions import LAST_ACTIVITY
from tmc.testing import PASSWORD, Tenant

pytestmark = pytest.mark.browser


def _age_server_session(page: Any, minutes: int) -> None:
    """Make the server's record of the last activity ``minutes`` old."""
    cookie = next(
        c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME
    )
    store = import_module(settings.SESSION_ENGINE).SessionStore(
        session_key=cookie["value"]
    )
    store[LAST_ACTIVITY] = time.time() - minutes * 60
    store.save()


def test_warning_then_time_out_keeps_the_draft(
    tenant_a: Tenant, live_server: Any, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    page.clock.install()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(tenant_a.user.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Send a text").first.click()
    page.get_by_label("To").fill("07400 123456")
    page.get_by_label("Message").fill("Half-written rota message")
    # Typing asks the server for the segment count (after a short debounce,
    # on the page's clock): that is activity, so let it finish first.
    page.clock.run_for(500)
    expect(page.locator("#segment-info")).to_contain_text("25 characters")

    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_hidden()
    page.clock.fast_forward("19:05")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("logged out in a minute")

    _age_server_session(page, minutes=21)
    page.clock.fast_forward("01:00")
    expect(page.get_by_role("heading", name="Log in to TMC")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("logged out after a period")

    page.get_by_label("Username").fill(tenant_a.user.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Send a text")).to_be_visible()
    expect(page.get_by_label("Message")).to_have_value("Half-written rota message")
    expect(page.get_by_label("To")).to_have_value("07400 123456")


def test_stay_logged_in_hides_the_warning(
    tenant_a: Tenant, live_server: Any, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    page = new_page()
    page.clock.install()
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(tenant_a.user.username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.clock.fast_forward("19:30")
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_visible()
    with page.expect_response("**/session/keepalive/") as answer:
        warning.get_by_role("button", name="Stay logged in").click()
    assert answer.value.status == 204
    expect(warning).to_be_hidden()
