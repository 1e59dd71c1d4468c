"""A Twilio-compatible subset: send a text and fetch it, in Twilio's shapes.

Programs written against Twilio's Messages resource (its SDKs included)
switch to TMC by changing the base URL and the credentials:

- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` with the form
  fields ``To``, ``Body`` and optionally ``From``;
- ``GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``.

HTTP Basic authentication: the username is the Account SID in the path
(any name the client chooses), the password a TMC API key. The key's rules
all apply (scopes, expiry, IP list, rate limit), and the send is the API's:
the same checks, credits and limits. ``From`` is used when it is one of the
account's approved senders, and the account's default sender otherwise (a
Twilio number means nothing here). Errors come in Twilio's shape,
``{"code", "message", "more_info", "status"}``.
"""

from __future__ import annotations

import base64
import binascii
import logging
import uuid
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from tmc.api.auth import number_for, rate_check
from tmc.api.errors import ApiError, from_validation_error
from tmc.api.models import ApiKey, Scope
from tmc.api.services import KeyRefused, api_key_check
from tmc.audit.services import client_address
from tmc.identity.access import ACCESS_ATTRIBUTE
from tmc.identity.models import User
from tmc.messaging.models import Message
from tmc.messaging.services import message_send

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
MORE_INFO = "https://www.twilio.com/docs/errors/"
# Twilio's error codes for the failures a client can meet here.
TWILIO_CODES = {
    "missing_key": 20003,
    "invalid_key": 20003,
    "revoked_key": 20003,
    "expired_key": 20003,
    "user_unavailable": 20003,
    "ip_not_allowed": 20003,
    "scope_missing": 20003,
    "permission_denied": 20003,
    "not_found": 20404,
    "rate_limited": 20429,
    "insufficient_credit": 20005,
}
FIELD_CODES = {"to": 21211, "recipient": 21211, "body": 21602, "sender": 21606}
STATUSES = {
    Message.Status.QUEUED: "queued",
    Message.Status.RETRYING: "queued",
    Message.Status.SUBMITTING: "sending",
    Message.Status.SUBMITTED: "sent",
    Message.Status.DELIVERED: "delivered",
    Message.Status.FAILED: "failed",
    Message.Status.EXPIRED: "undelivered",
    Message.Status.CANCELLED: "canceled",
}


def _error(error: ApiError) -> JsonResponse:
    code = TWILIO_CODES.get(error.code, 21604)
    if error.code == "validation_error" and error.field:
        code = FIELD_CODES.get(error.field, code)
    # Twilio answers a refused value with 400, where TMC's API says 422.
    status = 400 if error.status == 422 else error.status
    response = JsonResponse(
        {
            "code": code,
            "message": error.message,
            "more_info": f"{MORE_INFO}{code}",
            "status": status,
        },
        status=status,
    )
    for name, value in error.headers.items():
        response[name] = value
    if error.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="TMC"'
    return response


def _key(request: HttpRequest, account_sid: str, scope: Scope) -> ApiKey:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        raise ApiError("missing_key", "Authenticate with the Account SID and a key.")
    try:
        username, _, password = (
            base64.b64decode(encoded, validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError("invalid_key", "The credentials are not valid.") from exc
    try:
        key = api_key_check(raw_key=password, address=client_address(request))
    except KeyRefused as refused:
        raise ApiError(refused.code, refused.message) from refused
    if username != account_sid:
        raise ApiError("not_found", "No such account.")
    rate_check(key)
    if not key.has_scope(scope):
        raise ApiError(
            "scope_missing", f"This key does not have the {scope.value!r} scope."
        )
    return key


def _message_json(message: Message, account_sid: str, viewer: User) -> dict[str, Any]:
    sid = "SM" + message.uid.hex
    failed = message.status in {Message.Status.FAILED, Message.Status.EXPIRED}
    return {
        "sid": sid,
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "to": number_for(viewer, message.recipient),
        "from": message.sender,
        "body": message.body,
        "status": STATUSES.get(Message.Status(message.status), "queued"),
        "direction": "outbound-api",
        "num_segments": str(message.parts),
        "num_media": "0",
        "price": None,
        "price_unit": None,
        "error_code": 30008 if failed else None,
        "error_message": message.failure_reason or None,
        "messaging_service_sid": None,
        "date_created": format_datetime(message.created_at, usegmt=True),
        "date_updated": format_datetime(
            message.completed_at or message.submitted_at or message.created_at,
            usegmt=True,
        ),
        "date_sent": (
            format_datetime(message.submitted_at, usegmt=True)
            if message.submitted_at
            else None
        ),
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json",
        "subresource_uris": {},
    }


def _answering(
    view: Callable[..., JsonResponse],
) -> Callable[..., HttpResponse]:
    """Errors in Twilio's shape; the view is marked as API-key access."""

    def wrapped(request: HttpRequest, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, **kwargs)
        except ApiError as error:
            return _error(error)
        except ValidationError as exc:
            return _error(from_validation_error(exc))
        except PermissionDenied as exc:
            return _error(ApiError("permission_denied", str(exc) or "Not allowed."))
        except Http404:
            return _error(ApiError("not_found", "Not found."))

    setattr(wrapped, ACCESS_ATTRIBUTE, "api-key")
    wrapped.__name__ = view.__name__
    return wrapped


def _send(user: User, to: str, body: str, sender: str) -> Message:
    with transaction.atomic():
        try:
            return message_send(user=user, recipient=to, body=body, sender=sender)
        except ValidationError as exc:
            refused_sender = hasattr(exc, "error_dict") and "sender" in exc.error_dict
            if not (sender and refused_sender):
                raise
    # A Twilio number or a sender this account lacks: the default sender.
    with transaction.atomic():
        return message_send(user=user, recipient=to, body=body)


@require_POST
def _message_create(request: HttpRequest, account_sid: str) -> JsonResponse:
    user = _key(request, account_sid, Scope.SEND).user
    to, body = request.POST.get("To", ""), request.POST.get("Body", "")
    for name, value in (("To", to), ("Body", body)):
        if not value.strip():
            field = "to" if name == "To" else "body"
            raise ApiError("validation_error", f"A '{name}' is required.", field=field)
    if "\x00" in to + body:
        raise ApiError("validation_error", "The text has a NUL character.")
    message = _send(user, to, body, request.POST.get("From", "").strip()[:16])
    message.refresh_from_db()
    return JsonResponse(_message_json(message, account_sid, user), status=201)


@require_GET
def _message_fetch(
    request: HttpRequest, account_sid: str, message_sid: str
) -> JsonResponse:
    user = _key(request, account_sid, Scope.READ_MESSAGES).user
    try:
        uid = uuid.UUID(hex=message_sid.removeprefix("SM"))
    except ValueError as exc:
        raise ApiError("not_found", "Not found.") from exc
    message = Message.objects.for_user(user).filter(uid=uid).first()
    if message is None:
        raise ApiError("not_found", "Not found.")
    return JsonResponse(_message_json(message, account_sid, user))


# Basic-authenticated with a key, never a session: no CSRF token applies.
message_create = csrf_exempt(_answering(_message_create))
message_fetch = _answering(_message_fetch)

app_name = "twilio"
urlpatterns = [
    path(
        "Accounts/<str:account_sid>/Messages.json",
        message_create,
        name="message_create",
    ),
    path(
        "Accounts/<str:account_sid>/Messages/<str:message_sid>.json",
        message_fetch,
        name="message_fetch",
    ),
]
