"""`tmc demo` end to end: its processes serve, send, report, and stop together."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Browser:
    """Just enough of a browser: cookies, CSRF tokens and form posts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return str(response.read().decode())

    def post_form(self, path: str, fields: dict[str, str]) -> str:
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, "no CSRF token on the form"
        data = urllib.parse.urlencode(
            {**fields, "csrfmiddlewaretoken": token.group(1)}
        ).encode()
        request = urllib.request.Request(
            self.base + path, data=data, headers={"Referer": self.base + path}
        )
        with self.opener.open(request, timeout=10) as response:
            return str(response.read().decode())


def _wait_for(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail(f"{url} did not answer in time")


def test_demo_serves_sends_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = _free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TMC_") and key != "DJANGO_SETTINGS_MODULE"
    }
    environment.update({"TMC_HOME": str(home), "TMC_SIMULATOR_REPORT_DELAY": "0.5"})
    demo = subprocess.Popen(
        [sys.executable, "-m", "tmc", "demo", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Its own process group, as a terminal gives a foreground job, so
        # that "Ctrl-C" below reaches the demo and everything it started.
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(base + "/health/", time.monotonic() + 60)
        password = (home / "demo-password").read_text().strip()
        browser = Browser(base)

        dashboard = browser.post_form(
            "/login/", {"username": "demo", "password": password}
        )
        assert "Demo Ltd" in dashboard
        history = browser.post_form(
            "/messages/compose/",
            {"recipient": "07400 123456", "sender": "TMCDemo", "body": "Hi from demo"},
        )
        assert "queued for sending" in history

        deadline = time.monotonic() + 30
        while "Delivered" not in browser.get("/messages/"):
            assert time.monotonic() < deadline, "the message was never delivered"
            time.sleep(0.5)
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        output, _ = demo.communicate(timeout=30)

    assert demo.returncode == 0, output
    assert f"Password  {password}" in output
    with pytest.raises(ProcessLookupError):
        os.killpg(demo.pid, 0)  # nobody is left in the demo's process group
