"""A person logs in, composes a text and watches it reach "Delivered".

Drives Debian's Chromium through Playwright against a live server and a real
worker. Skips where Chromium is missing, unless TMC_REQUIRE_BROWSER=1 says
the browser tests must run (as in CI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tmc.messaging.models import Message
from tmc.testing import PASSWORD, Tenant

pytestmark = pytest.mark.browser


def test_log_in_compose_and_see_it_delivered(
    # The database fixtures come first so that the session-wide live server
    # is stopped, and its connection closed, before the test database goes.
    huey_worker: None,
    tenant_a: Tenant,
    live_server: Any,
    page: Any,
    settings: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    settings.TMC_SIMULATOR_REPORT_DELAY = 1.0

    page.goto(live_server.url)
    expect(page).to_have_title("Log in · TMC")
    page.get_by_label("Username").fill(tenant_a.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()

    page.get_by_role("link", name="Send a text").first.click()
    page.get_by_label("To").fill("07400 123456")
    body = page.get_by_label("Message")
    body.press_sequentially("Shift at 9€ tomorrow?")
    info = page.locator("#segment-info")
    expect(info).to_contain_text("GSM-7")
    expect(info).to_contain_text("21 characters")
    body.press_sequentially(" ✓")
    expect(info).to_contain_text("UCS-2")
    page.screenshot(path=str(tmp_path / "compose.png"))
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name="Sent messages")).to_be_visible()
    message = Message.objects.get()
    row = page.locator(f"#message-{message.pk}")
    expect(row).to_contain_text("+44 7400 1")
    expect(row.get_by_test_id("status")).to_have_text("Delivered", timeout=20_000)
    page.screenshot(path=str(tmp_path / "delivered.png"))
    message.refresh_from_db()
    assert message.encoding == "UCS-2"
    assert message.body == "Shift at 9€ tomorrow? ✓"
