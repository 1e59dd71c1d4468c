"""Browser fixtures: Debian's Chromium driven by Playwright.

Skips where Chromium is missing, unless TMC_REQUIRE_BROWSER=1 says the
browser tests must run (as in CI).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

CHROMIUM = Path(os.environ.get("TMC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def new_page(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[], Any]]:
    """Open pages in separate browser contexts: one per person."""
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM}"
        if os.environ.get("TMC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{message}, and TMC_REQUIRE_BROWSER=1")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # The live server speaks plain HTTP; production cookies are TLS-only.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between browser steps are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        contexts: list[Any] = []

        def open_page() -> Any:
            context = browser.new_context()
            context.set_default_timeout(15_000)
            contexts.append(context)
            return context.new_page()

        yield open_page
        for context in contexts:
            context.close()
        browser.close()
        # Database work done while Playwright runs happens in another context
        # (Playwright switches greenlets), whose connection would otherwise
        # outlive the test and keep the test database from being dropped.
        connections.close_all()


@pytest.fixture
def page(new_page: Callable[[], Any]) -> Any:
    return new_page()
