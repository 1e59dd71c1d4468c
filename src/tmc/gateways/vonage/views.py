"""Vonage's webhooks: delivery receipts and inbound SMS, signed.

Public URLs (Vonage has no session): the signature, made with the
provider's signature secret over every parameter and a timestamp at most
five minutes old, is the access check, made before anything is read or
changed. A nonce seen before is answered without acting again. Vonage sends
parameters as a query string (GET), a form or JSON (POST); all three are
read the same way.
"""

from __future__ import annotations

import json
import logging

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from tmc.gateways.base import DeliveryState
from tmc.gateways.inbound_parts import InboundPiece, inbound_piece_receive
from tmc.gateways.models import GatewayProvider
from tmc.gateways.services import delivery_report_receive, message_report_receive
from tmc.gateways.vonage.adapter import VonageConfig
from tmc.gateways.vonage.signing import MAX_AGE_SECONDS, signature_valid
from tmc.identity.access import public
from tmc.messaging.models import Message

logger = logging.getLogger(__name__)

DELIVERED = {"delivered"}
FAILED = {"expired", "failed", "rejected", "unknown"}


def _params(request: HttpRequest) -> dict[str, str] | None:
    if request.method == "GET":
        return request.GET.dict()
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        return {str(k): str(v) for k, v in data.items() if v is not None}
    return request.POST.dict()


def _verified(request: HttpRequest, provider: str) -> tuple[str, dict[str, str]] | None:
    """The provider's name and the parameters, if signed by its secret."""
    row = GatewayProvider.objects.filter(
        name=provider, kind=GatewayProvider.Kind.VONAGE, enabled=True
    ).first()
    params = _params(request)
    if row is None or params is None:
        return None
    config = VonageConfig.from_provider(row)
    if not signature_valid(
        config.signature_secret, params, method=config.signature_method
    ):
        logger.warning("vonage webhook refused: bad signature provider=%s", provider)
        return None
    return config.name, params


def _first_time(name: str, params: dict[str, str]) -> bool:
    # The signature stops forgery, not the replay of a genuine request
    # within its five minutes; the nonce does.
    nonce = params.get("nonce", "")
    if not nonce:
        return True
    return bool(cache.add(f"vonage:{name}:nonce:{nonce}", 1, MAX_AGE_SECONDS * 2))


def _checked(
    request: HttpRequest, provider: str
) -> tuple[str, dict[str, str]] | HttpResponse:
    """The provider's name and parameters, or the answer that ends the call."""
    verified = _verified(request, provider)
    if verified is None:
        return HttpResponse(status=403)
    name, params = verified
    if not _first_time(name, params):
        return JsonResponse({"repeat": True})
    return name, params


@public
@csrf_exempt
@require_http_methods(["GET", "POST"])
def reports(request: HttpRequest, provider: str) -> HttpResponse:
    checked = _checked(request, provider)
    if isinstance(checked, HttpResponse):
        return checked
    name, params = checked
    status = params.get("status", "").lower()
    if status in DELIVERED:
        state = DeliveryState.DELIVERED
    elif status in FAILED:
        state = DeliveryState.FAILED
    else:
        return JsonResponse({"final": False})  # accepted, buffered: not yet
    reason = f"{status} (err-code {params.get('err-code', '')})"
    message = delivery_report_receive(
        gateway=name,
        provider_message_id=params.get("messageId", ""),
        state=state,
        reason="" if state is DeliveryState.DELIVERED else reason,
    )
    reference = params.get("client-ref", "")
    if message is None and reference.isdigit():
        # Another part of a long text (each has its own id), or a receipt
        # that overtook the record of the submission.
        message = message_report_receive(
            gateway=name,
            message_id=int(reference),
            state=state,
            reason="" if state is DeliveryState.DELIVERED else reason,
        )
        submitting = Message.objects.filter(
            pk=int(reference), status=Message.Status.SUBMITTING
        ).exists()
        if message is None and submitting:
            # Not recorded as sent yet: a non-2xx answer makes Vonage send
            # the receipt again later, so it is not lost.
            cache.delete(f"vonage:{name}:nonce:{params.get('nonce', '')}")
            return HttpResponse(status=503)
    return JsonResponse({"known": message is not None})


@public
@csrf_exempt
@require_http_methods(["GET", "POST"])
def inbound(request: HttpRequest, provider: str) -> HttpResponse:
    checked = _checked(request, provider)
    if isinstance(checked, HttpResponse):
        return checked
    name, params = checked
    if params.get("type", "text") not in ("text", "unicode"):
        return JsonResponse({"ignored": True})  # binary: nothing to read
    concat = params.get("concat", "").lower() == "true"
    try:
        piece = InboundPiece(
            gateway=name,
            sender=_e164(params.get("msisdn", "")),
            recipient=_e164(params.get("to", "")),
            reference=int(params.get("concat-ref", "0")) if concat else 0,
            total=int(params.get("concat-total", "1")) if concat else 1,
            sequence=int(params.get("concat-part", "1")) if concat else 1,
            text=params.get("text", ""),
        )
    except ValueError:
        return HttpResponse(status=400)
    complete = inbound_piece_receive(piece)
    return JsonResponse({"complete": complete})


def _e164(number: str) -> str:
    number = number.strip()
    return f"+{number}" if number.isdigit() else number
