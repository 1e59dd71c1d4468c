"""A local stand-in for Vonage: the SMS API, the Reports API and its webhooks.

It answers ``POST /sms/json`` and ``GET /v2/reports/records`` the way the
documented APIs do, keeps what it was sent, and builds delivery receipts and
inbound texts signed with the account's signature secret, as Vonage sends
them to the platform's webhooks.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tmc.gateways.vonage.signing import sign

API_KEY = "abcd1234"
API_SECRET = "api-secret-1"  # nosec B105
SIGNATURE_SECRET = "sig-secret-1"  # nosec B105
PAGE_SIZE = 2


@dataclass
class FakeVonage:
    """What the fake was sent, and how it should answer."""

    submissions: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    status_for: dict[str, str] = field(default_factory=dict)  # number -> status
    reports_status: int = 200
    port: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(0x0A000000000001))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        self.submissions.append(body)
        if (body.get("api_key"), body.get("api_secret")) != (API_KEY, API_SECRET):
            return _answer([{"status": "4", "error-text": "Bad Credentials"}])
        status = self.status_for.get(str(body.get("to")), "0")
        if status != "0":
            return _answer([{"status": status, "error-text": "Refused"}])
        limit = 70 if body.get("type") == "unicode" else 160
        text = str(body.get("text", ""))
        count = 1 if len(text) <= limit else -(-len(text) // (limit - 7))
        parts = []
        for _ in range(count):
            message_id = f"{next(self._ids):016X}"
            parts.append(
                {
                    "to": body.get("to"),
                    "message-id": message_id,
                    "status": "0",
                    "remaining-balance": "10.00",
                    "message-price": "0.03",
                    "network": "23410",
                    "client-ref": body.get("client-ref"),
                }
            )
            self.records.append(
                {
                    "account_id": API_KEY,
                    "message_id": message_id,
                    "client_ref": body.get("client-ref"),
                    "direction": "outbound",
                    "to": body.get("to"),
                    "status": "delivered",
                }
            )
        return _answer(parts)

    def submit_answer_part(self, index: int) -> dict[str, Any]:
        """Part ``index`` of what the fake has accepted, as it answered it."""
        record = self.records[index]
        return {
            "to": record["to"],
            "message-id": record["message_id"],
            "client-ref": record["client_ref"],
        }

    def receipt(
        self, part: dict[str, Any], status: str = "delivered", err: str = "0"
    ) -> dict[str, str]:
        """A signed delivery receipt for one part the fake accepted."""
        return self.signed(
            {
                "msisdn": str(part["to"]),
                "to": "AcmeAlerts",
                "network-code": "23410",
                "messageId": str(part["message-id"]),
                "price": "0.03",
                "status": status,
                "scts": "2612041200",
                "err-code": err,
                "api-key": API_KEY,
                "client-ref": str(part.get("client-ref") or ""),
                "message-timestamp": "2026-12-04 12:00:00",
            }
        )

    def text(
        self,
        sender: str,
        to: str,
        text: str,
        concat: tuple[int, int, int] | None = None,
    ) -> dict[str, str]:
        """A signed inbound SMS; ``concat`` is (reference, total, part)."""
        params = {
            "api-key": API_KEY,
            "msisdn": sender,
            "to": to,
            "messageId": uuid.uuid4().hex[:16].upper(),
            "text": text,
            "type": "text",
            "keyword": text.split(" ")[0].upper() if text else "",
            "message-timestamp": "2026-12-04 12:00:00",
        }
        if concat is not None:
            reference, total, part = concat
            params |= {
                "concat": "true",
                "concat-ref": str(reference),
                "concat-total": str(total),
                "concat-part": str(part),
            }
        return self.signed(params)

    @staticmethod
    def signed(params: dict[str, str], *, age: int = 0) -> dict[str, str]:
        params = dict(params)
        params["timestamp"] = str(int(time.time()) - age)
        params["nonce"] = uuid.uuid4().hex
        params["sig"] = sign(SIGNATURE_SECRET, params, method="sha256")
        return params

    def serve(self) -> tuple[ThreadingHTTPServer, threading.Thread]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/sms/json":
                    self._reply(404, {})
                    return
                self._reply(200, fake.submit(body))

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                expected = base64.b64encode(f"{API_KEY}:{API_SECRET}".encode())
                if self.headers.get("Authorization") != f"Basic {expected.decode()}":
                    self._reply(401, {"title": "Unauthorized"})
                    return
                if path != "/v2/reports/records" or fake.reports_status != 200:
                    self._reply(fake.reports_status, {"title": "Unavailable"})
                    return
                args = dict(urllib.parse.parse_qsl(query))
                assert {"account_id", "product", "direction", "date_start"} <= set(args)
                page = int(args.pop("page", "0"))
                chunk = fake.records[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
                answer: dict[str, Any] = {"records": chunk, "items_count": len(chunk)}
                if (page + 1) * PAGE_SIZE < len(fake.records):
                    following = urllib.parse.urlencode({**args, "page": page + 1})
                    answer["_links"] = {
                        "next": {"href": f"{fake.url}{path}?{following}"}
                    }
                self._reply(200, answer)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = server.server_port
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server, thread


def _answer(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"message-count": str(len(parts)), "messages": parts}
