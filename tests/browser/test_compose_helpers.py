"""The compose page's helpers in a real browser: templates and look-alikes."""

from __future__ import annotations

from typing import Any

import pytest

from tmc.messaging.models import Message
from tmc.messaging.services import message_template_create
from tmc.testing import PASSWORD, Tenant

pytestmark = pytest.mark.browser

CURLY = "Shift \u201cA\u201d tomorrow \u2013 it\u2019s at " + "the depot, " * 6


def test_a_template_fills_the_message_and_lookalikes_can_be_replaced(
    # transactional_db first: the live server must see the rows made here,
    # and be stopped before the test database goes.
    transactional_db: None,
    tenant_a: Tenant,
    live_server: Any,
    page: Any,
) -> None:
    from playwright.sync_api import expect

    message_template_create(user=tenant_a.user, name="Shift A", body=CURLY)
    page.goto(live_server.url)
    page.get_by_label("Username").fill(tenant_a.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Send a text").first.click()
    box = page.get_by_label("Replace look-alike characters")
    info = page.locator("#segment-info")

    # Nothing to replace yet: the box is not offered.
    expect(box).to_be_hidden()

    page.get_by_label("Use a template").select_option(label="Shift A")
    expect(page.get_by_label("Message")).to_have_value(CURLY)
    expect(info).to_contain_text("UCS-2")
    expect(info).to_contain_text("instead of 2")
    expect(box).to_be_visible()

    box.check()
    expect(info).to_contain_text("GSM-7")
    expect(info.get_by_test_id("preview")).to_have_text(
        'Shift "A" tomorrow - it\'s at ' + "the depot, " * 6
    )

    page.get_by_label("To").fill("07400 123456")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="Sent messages")).to_be_visible()
    message = Message.objects.get()
    assert message.body == 'Shift "A" tomorrow - it\'s at ' + "the depot, " * 6
    assert (message.encoding, message.parts) == ("GSM-7", 1)
