"""A staff member opens a client's account for a reason and adjusts credits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tmc.messaging.services import message_send
from tmc.testing import STAFF_PASSWORD, STAFF_SECOND_PASSWORD, Tenant, make_staff

pytestmark = pytest.mark.browser


def test_staff_open_an_account_with_a_reason_and_adjust_credits(
    tenant_a: Tenant, live_server: Any, new_page: Callable[[], Any]
) -> None:
    from playwright.sync_api import expect

    member = make_staff(3)
    message_send(user=tenant_a.user, recipient="07400 123456", body="Hello")
    page = new_page()

    page.goto(f"{live_server.url}/staff/")
    expect(page.get_by_role("heading", name="TMC staff log in")).to_be_visible()
    page.get_by_label("Username").fill(member.username)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Second password").fill(STAFF_SECOND_PASSWORD)
    page.get_by_role("button", name="Continue").click()

    page.get_by_label("Name").fill("Acm")
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name="Acme").click()
    expect(page.get_by_role("heading", name="Open Acme")).to_be_visible()
    page.get_by_label("Reason").fill("Ticket 5150: missing credits")
    page.get_by_role("button", name="Open for 30 minutes").click()

    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("99")
    page.get_by_label("Amount").fill("25")
    page.get_by_label("Reason").fill("Refund for the outage")
    page.get_by_role("button", name="Adjust").click()
    expect(page.get_by_role("status")).to_contain_text("Balance is now 124")

    page.get_by_role("button", name="Show number").click()
    expect(page.get_by_test_id("full-number")).to_have_text("+44 7400 123456")
