"""A person asks three phones a yes/no question and watches the tally move.

The results page stays open in one tab while the answers are given from the
simulated handsets in another; the tally changes without a reload.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tmc.boomerang.services import numbers_add
from tmc.messaging.models import Message
from tmc.testing import PASSWORD, Tenant

pytestmark = pytest.mark.browser

PHONES = ["07400 111111", "07400 222222", "07400 333333"]


def _log_in(page: Any, url: str, username: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()


def test_a_yes_no_question_to_three_handsets_tallies_live(
    huey_worker: None,
    tenant_a: Tenant,
    live_server: Any,
    new_page: Callable[[], Any],
    settings: Any,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    settings.TMC_SIMULATOR_REPORT_DELAY = 0.5
    numbers_add(numbers=["+447400900001"])
    results = new_page()
    _log_in(results, live_server.url, tenant_a.controller.username)

    results.get_by_role("link", name="Questions").click()
    results.get_by_role("link", name="Ask a question").click()
    results.get_by_label("Question name").fill("Saturday shift")
    results.get_by_label("To", exact=True).fill("\n".join(PHONES))
    results.get_by_label("Message", exact=True).fill(
        "Can you work Saturday? Reply YES or NO"
    )
    results.get_by_label("Yes or no").check()
    results.get_by_role("button", name="Send").click()

    expect(results.get_by_role("heading", name="Saturday shift")).to_be_visible()
    expect(results.get_by_test_id("sent")).to_have_text("3")
    expect(results.get_by_test_id("not-answered")).to_have_text("3")

    handsets = new_page()
    _log_in(handsets, live_server.url, tenant_a.controller.username)
    handsets.get_by_role("link", name="Handsets").click()
    sent = list(Message.objects.order_by("pk"))
    for message, answer in zip(sent, ["Yes!", "yeah", "no thanks"], strict=True):
        row = handsets.locator(f"#handset-message-{message.pk}")
        expect(row).to_be_visible(timeout=20_000)
        row.get_by_label(f"Reply to message {message.pk}").fill(answer)
        row.get_by_role("button", name="Reply").click()
        expect(handsets.get_by_text("The handset replied")).to_be_visible()
        if answer == "Yes!":
            # The first tab, untouched, has already counted it.
            expect(results.get_by_test_id("count-yes")).to_have_text("1")

    expect(results.get_by_test_id("count-yes")).to_have_text("2")
    expect(results.get_by_test_id("count-no")).to_have_text("1")
    expect(results.get_by_test_id("not-answered")).to_have_text("0")
    results.screenshot(path=str(tmp_path / "tally.png"), full_page=True)
