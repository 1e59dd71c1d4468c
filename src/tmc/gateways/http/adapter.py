"""A generic JSON-over-HTTP provider: one POST per message.

The URL, an authentication header and the JSON field names come from
configuration (``TMC_HTTP_GATEWAY_*``, or a provider of kind ``http`` set up
by staff), so providers that take a flat JSON body and answer with an id
need no code of their own. Delivery reports and replies come back signed to
``views.py``.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings

from tmc.gateways.base import (
    BatchOutcome,
    GatewayError,
    Submission,
    SubmitResult,
    submit_each,
)
from tmc.gateways.models import GatewayProvider

logger = logging.getLogger(__name__)

NAME = "http"
DEFAULT_FIELDS = {
    "to": "to",
    "from": "from",
    "text": "text",
    "reference": "reference",
    "id": "id",
    "status": "status",
    "reason": "reason",
}


@dataclass(frozen=True)
class HttpConfig:
    name: str
    url: str
    auth_header: str = ""
    callback_secret: str = ""
    field_names: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, str]:
        """Our names for the JSON keys, mapped to the provider's."""
        return {**DEFAULT_FIELDS, **self.field_names}

    @classmethod
    def from_settings(cls) -> HttpConfig:
        return cls(
            name=NAME,
            url=settings.TMC_HTTP_GATEWAY_URL,
            auth_header=settings.TMC_HTTP_GATEWAY_AUTH_HEADER,
            callback_secret=settings.TMC_HTTP_GATEWAY_SECRET,
            field_names=dict(settings.TMC_HTTP_GATEWAY_FIELDS),
        )

    @classmethod
    def from_provider(cls, provider: GatewayProvider) -> HttpConfig:
        from tmc.gateways.providers import provider_credentials

        secrets = provider_credentials(provider)
        return cls(
            name=provider.name,
            url=provider.setting("url", ""),
            auth_header=secrets.get("auth_header", ""),
            callback_secret=secrets.get("callback_secret", ""),
            field_names=dict(provider.setting("field_names", {})),
        )


def fields_parse(text: str) -> dict[str, str]:
    """``ours=theirs,…`` as a mapping; raise ValueError naming a bad pair."""
    mapping = {}
    for item in text.split(","):
        if not item.strip():
            continue
        ours, sep, theirs = item.partition("=")
        if not sep or ours.strip() not in DEFAULT_FIELDS or not theirs.strip():
            raise ValueError(
                f"{item.strip()!r} is not ours=theirs with ours one of "
                + ", ".join(DEFAULT_FIELDS)
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


class HttpGateway:
    def __init__(self, config: HttpConfig | None = None) -> None:
        self.config = config or HttpConfig.from_settings()
        self.name = self.config.name

    def submit(self, submission: Submission) -> SubmitResult:
        names = self.config.fields
        body = json.dumps(
            {
                names["to"]: submission.recipient,
                names["from"]: submission.sender,
                names["text"]: submission.body,
                names["reference"]: str(submission.message_id),
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        auth = self.config.auth_header
        if auth:
            header, _, value = auth.partition(":")
            headers[header.strip()] = value.strip()
        request = urllib.request.Request(  # noqa: S310  (the configured URL)
            self.config.url, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            # 4xx: the provider read the request and refused it; 5xx: it
            # may take the same request later.
            raise GatewayError(
                f"provider answered HTTP {exc.code}", permanent=exc.code < 500
            ) from exc
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise GatewayError("provider unreachable", permanent=False) from exc
        provider_id = answer.get(names["id"]) if isinstance(answer, dict) else None
        if not provider_id:
            raise GatewayError("provider gave no message id", permanent=False)
        logger.info(
            "http provider accepted message_id=%s provider_id=%s",
            submission.message_id,
            provider_id,
        )
        return SubmitResult(provider_message_id=str(provider_id))

    def submit_batch(self, submissions: Sequence[Submission]) -> list[BatchOutcome]:
        return submit_each(self, submissions)

    def lookup(self, message_id: int) -> str | None:
        """The generic provider offers no look-up of what it received.

        Raising leaves a message whose worker died mid-request for a person
        to settle, rather than guessing: a guess of "not received" could
        send it twice.
        """
        raise GatewayError(
            f"{self.name} cannot say whether it received message {message_id}",
            permanent=False,
        )
