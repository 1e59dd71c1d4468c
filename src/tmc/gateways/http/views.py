"""Signed callbacks from the HTTP provider: delivery reports and replies.

These URLs are public (the provider has no session); the HMAC signature is
the access check, made before anything is read or changed. Anything unsigned,
wrongly signed, stale or for another provider gets 403 and changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from tmc.gateways.base import DeliveryState
from tmc.gateways.http.adapter import HttpConfig
from tmc.gateways.http.signing import signature_valid
from tmc.gateways.models import GatewayProvider
from tmc.gateways.services import delivery_report_receive, inbound_accept
from tmc.identity.access import public

logger = logging.getLogger(__name__)


def _config(provider: str) -> HttpConfig | None:
    """The callbacks' provider: the configured one, or one staff set up."""
    if provider == settings.TMC_HTTP_GATEWAY_NAME:
        return HttpConfig.from_settings()
    try:
        row = GatewayProvider.objects.get(
            name=provider, kind=GatewayProvider.Kind.HTTP, enabled=True
        )
    except ObjectDoesNotExist:
        return None
    return HttpConfig.from_provider(row)


def _verified(
    request: HttpRequest, provider: str
) -> tuple[HttpConfig, dict[str, Any]] | None:
    config = _config(provider)
    if config is None:
        return None
    valid = signature_valid(
        config.callback_secret,
        timestamp=request.headers.get("X-TMC-Timestamp", ""),
        signature=request.headers.get("X-TMC-Signature", ""),
        body=request.body,
    )
    if not valid:
        logger.warning("http callback refused: bad signature provider=%s", provider)
        return None
    try:
        data = json.loads(request.body)
    except ValueError:
        return None
    return (config, data) if isinstance(data, dict) else None


@public
@csrf_exempt
@require_POST
def reports(request: HttpRequest, provider: str) -> HttpResponse:
    verified = _verified(request, provider)
    if verified is None:
        return HttpResponse(status=403)
    config, data = verified
    names = config.fields
    status = str(data.get(names["status"], "")).lower()
    state = DeliveryState.DELIVERED if status == "delivered" else DeliveryState.FAILED
    message = delivery_report_receive(
        gateway=config.name,
        provider_message_id=str(data.get(names["id"], "")),
        state=state,
        reason=str(data.get(names["reason"], "")),
    )
    return JsonResponse({"known": message is not None})


@public
@csrf_exempt
@require_POST
def inbound(request: HttpRequest, provider: str) -> HttpResponse:
    verified = _verified(request, provider)
    if verified is None:
        return HttpResponse(status=403)
    config, data = verified
    names = config.fields
    received = inbound_accept(
        gateway=config.name,
        sender=str(data.get(names["from"], "")),
        recipient=str(data.get(names["to"], "")),
        body=str(data.get(names["text"], "")),
    )
    return JsonResponse({"id": received.pk})
