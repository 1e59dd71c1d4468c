"""Drive the local SMSC (``tests/peers/smsc``) from tests and the benchmark.

Not used in production: it starts the Node peer as a child process and talks
to its control port on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess  # nosec B404
import urllib.request
from pathlib import Path
from typing import Any

PEER_DIR = Path(__file__).resolve().parents[4] / "tests" / "peers" / "smsc"


class PeerUnavailable(Exception):
    """Node or the peer's packages are not installed."""


class LocalSmsc:
    """The Node SMSC as a child process, with its control API."""

    def __init__(self, *, tls_key: Path | None = None, tls_cert: Path | None = None):
        """Start the peer; with a key and certificate it speaks SMPP over TLS."""
        node = shutil.which("node")
        if node is None:
            raise PeerUnavailable("node is not installed")
        if not (PEER_DIR / "node_modules" / "smpp").is_dir():
            raise PeerUnavailable(
                "the peer's packages are missing: npm ci --prefix tests/peers/smsc"
            )
        env = {**os.environ, "SMSC_PORT": "0", "SMSC_CONTROL_PORT": "0"}
        if tls_key is not None and tls_cert is not None:
            env |= {"SMSC_TLS_KEY": str(tls_key), "SMSC_TLS_CERT": str(tls_cert)}
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603
            [node, str(PEER_DIR / "smsc.js")],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.process.stdout is not None
        ports = json.loads(self.process.stdout.readline())
        self.port: int = ports["smpp"]
        self.control_port: int = ports["control"]

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.control_port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
            return json.loads(response.read())

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/state")
        return result

    def configure(self, **options: Any) -> None:
        self._call("POST", "/config", options)

    def reset(self) -> None:
        self._call("POST", "/reset", {})

    def drop(self) -> None:
        self._call("POST", "/drop", {})

    def mo(
        self,
        *,
        source: str,
        destination: str,
        segments: list[str],
        coding: str = "gsm",
        concat: str = "udh",
        ref: int = 7,
        only: list[int] | None = None,
    ) -> None:
        result = self._call(
            "POST",
            "/mo",
            {
                "source": source,
                "destination": destination,
                "segments": segments,
                "coding": coding,
                "concat": concat,
                "ref": ref,
                "only": only,
            },
        )
        assert result["ok"], "the SMSC has no bound session"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
