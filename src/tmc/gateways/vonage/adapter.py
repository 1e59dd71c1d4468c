"""The Vonage SMS API (``rest.nexmo.com/sms/json``) as a gateway provider.

One JSON POST per message, authenticated by the account's API key and
secret; our message id travels as ``client-ref``. Vonage splits a long text
itself and answers with one ``message-id`` per part; the first names the
message. Delivery receipts and inbound texts come back to ``views.py``,
signed with the account's signature secret. The reconciler's look-up asks
the Reports API for the records sent around the time the message was
claimed and finds ours by its ``client-ref``.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tmc.gateways.base import (
    BatchOutcome,
    GatewayError,
    Submission,
    SubmitResult,
    submit_each,
)
from tmc.gateways.models import GatewayProvider
from tmc.lib.segments import Encoding
from tmc.messaging.models import Message

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://rest.nexmo.com"
DEFAULT_REPORTS_URL = "https://api.nexmo.com"
# Status codes of /sms/json that say something about the text or the number,
# so another provider would refuse it too: the message fails. Any other
# (throttled, internal error, credentials, quota) is the provider's trouble
# for now, and the route's next gateway is tried.
PERMANENT_STATUSES = frozenset({"2", "3", "6", "7", "12", "15", "29", "33"})
# How many pages of records a look-up reads before giving up for this run.
LOOKUP_MAX_PAGES = 10


@dataclass(frozen=True)
class VonageConfig:
    name: str
    api_key: str
    api_secret: str
    signature_secret: str
    signature_method: str = "sha256"
    base_url: str = DEFAULT_BASE_URL
    reports_url: str = DEFAULT_REPORTS_URL

    @classmethod
    def from_provider(cls, provider: GatewayProvider) -> VonageConfig:
        from tmc.gateways.providers import provider_credentials

        secrets = provider_credentials(provider)
        return cls(
            name=provider.name,
            api_key=provider.setting("api_key", ""),
            api_secret=secrets.get("api_secret", ""),
            signature_secret=secrets.get("signature_secret", ""),
            signature_method=provider.setting("signature_method", "sha256"),
            base_url=provider.setting("base_url", "") or DEFAULT_BASE_URL,
            reports_url=provider.setting("reports_url", "") or DEFAULT_REPORTS_URL,
        )


def _request(request: urllib.request.Request) -> Any:
    """Send a request; the decoded JSON answer, or GatewayError."""
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        # Credentials and rate limits are the account's problem, not the
        # message's; any other 4xx means the request itself was wrong.
        temporary = exc.code >= 500 or exc.code in (401, 403, 429)
        raise GatewayError(
            f"Vonage answered HTTP {exc.code}", permanent=not temporary
        ) from exc
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise GatewayError("Vonage unreachable", permanent=False) from exc


class VonageGateway:
    def __init__(self, config: VonageConfig) -> None:
        self.config = config
        self.name = config.name

    @classmethod
    def for_provider(cls, provider: GatewayProvider) -> VonageGateway:
        return cls(VonageConfig.from_provider(provider))

    def submit(self, submission: Submission) -> SubmitResult:
        if not submission.recipient.startswith("+"):
            raise GatewayError("destination is not in E.164 form", permanent=True)
        sender = submission.sender.lstrip("+")
        body = {
            "api_key": self.config.api_key,
            "api_secret": self.config.api_secret,
            "from": sender,
            "to": submission.recipient.lstrip("+"),
            "text": submission.body,
            "type": "unicode" if submission.encoding is Encoding.UCS2 else "text",
            "client-ref": str(submission.message_id),
        }
        request = urllib.request.Request(  # noqa: S310  (the configured URL)
            f"{self.config.base_url.rstrip('/')}/sms/json",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        answer = _request(request)
        parts = answer.get("messages") if isinstance(answer, dict) else None
        if not parts or not isinstance(parts, list):
            raise GatewayError("Vonage gave no answer per part", permanent=False)
        for part in parts:
            status = str(part.get("status", ""))
            if status != "0":
                reason = f"Vonage status {status}: {part.get('error-text', '')}"
                raise GatewayError(
                    reason.strip(), permanent=status in PERMANENT_STATUSES
                )
        provider_id = str(parts[0].get("message-id", ""))
        if not provider_id:
            raise GatewayError("Vonage gave no message id", permanent=False)
        logger.info(
            "vonage accepted message_id=%s provider_id=%s parts=%s",
            submission.message_id,
            provider_id,
            len(parts),
        )
        return SubmitResult(provider_message_id=provider_id)

    def submit_batch(self, submissions: Sequence[Submission]) -> list[BatchOutcome]:
        # One request per message: the SMS API takes no batches.
        return submit_each(self, submissions)

    def lookup(self, message_id: int) -> str | None:
        """Vonage's id for our message, from the Reports API's records.

        The records of the minutes around the claim are read, page by page,
        for one whose ``client_ref`` is our id. Raises GatewayError when the
        API cannot answer, or has more pages than one run reads.
        """
        claimed = (
            Message.objects.filter(pk=message_id)
            .values_list("submitting_since", "created_at")
            .first()
        )
        if claimed is None:
            return None
        since = claimed[0] or claimed[1]
        query = urllib.parse.urlencode(
            {
                "account_id": self.config.api_key,
                "product": "SMS",
                "direction": "outbound",
                "date_start": _iso(since - timedelta(minutes=2)),
                "date_end": _iso(since + timedelta(minutes=10)),
            }
        )
        url: str | None = (
            f"{self.config.reports_url.rstrip('/')}/v2/reports/records?{query}"
        )
        token = base64.b64encode(
            f"{self.config.api_key}:{self.config.api_secret}".encode()
        ).decode()
        for _page in range(LOOKUP_MAX_PAGES):
            if url is None:
                return None
            request = urllib.request.Request(  # noqa: S310  (the configured URL)
                url, headers={"Authorization": f"Basic {token}"}
            )
            answer = _request(request)
            for record in answer.get("records", []):
                if str(record.get("client_ref") or "") == str(message_id):
                    return str(record.get("message_id", "")) or None
            url = answer.get("_links", {}).get("next", {}).get("href")
        raise GatewayError(
            f"more Vonage records than one look-up reads for {message_id}",
            permanent=False,
        )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
