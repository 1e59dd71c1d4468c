"""One JSON shape for every API error, with codes clients may rely on.

``{"error": {"code": "...", "message": "...", "field": "..."}}``; ``field``
is present when one input field is at fault. Codes are part of the API's
contract: add new ones, never change what an existing one means.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from pydantic import BaseModel

from tmc.accounts.services import InsufficientCredit
from tmc.api.services import KeyRefused

logger = logging.getLogger(__name__)

# code -> (status, meaning), listed in the OpenAPI description and docs.
CODES: dict[str, tuple[int, str]] = {
    "validation_error": (422, "The request is malformed or a value is refused."),
    "missing_key": (401, "No `Authorization: Bearer` header."),
    "invalid_key": (401, "The key is unknown."),
    "revoked_key": (401, "The key was revoked."),
    "expired_key": (401, "The key has expired."),
    "user_unavailable": (401, "The key's user is locked or deactivated."),
    "ip_not_allowed": (403, "The key may not be used from this address."),
    "scope_missing": (403, "The key's scopes do not include this."),
    "permission_denied": (403, "The key's user may not do this."),
    "not_found": (404, "No such object in this organisation."),
    "method_not_allowed": (405, "The path does not take this method."),
    "idempotency_mismatch": (
        409,
        "The Idempotency-Key was used with a different request.",
    ),
    "idempotency_in_progress": (
        409,
        "A request with this Idempotency-Key is still being processed.",
    ),
    "insufficient_credit": (402, "The account's balance does not cover it."),
    "rate_limited": (429, "Too many requests with this key; see Retry-After."),
    "internal_error": (500, "A fault on our side; it has been logged."),
}


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = CODES[code][0]
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return {"error": error}


def error_response(
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, field), status=CODES[code][0])
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def from_validation_error(exc: ValidationError) -> ApiError:
    """The first message of a service's ValidationError, keyed by its field.

    A refusal for credit is a 402, whichever field the service put it under:
    the client's fix is a top-up, not a change to the request.
    """
    cause = exc.__cause__
    if isinstance(cause, InsufficientCredit):
        return ApiError("insufficient_credit", str(cause))
    if hasattr(exc, "error_dict"):
        field, messages = next(iter(exc.message_dict.items()))
        return ApiError("validation_error", messages[0], field=field)
    return ApiError("validation_error", exc.messages[0])


def query_check(request: HttpRequest, known: type[BaseModel]) -> None:
    """Refuse query parameters the endpoint does not take: a misspelt filter
    would otherwise be ignored, and the answer look right but not be."""
    unknown = sorted(set(request.GET) - set(known.model_fields))
    if unknown:
        raise ApiError(
            "validation_error",
            f"Unknown query parameter {unknown[0]!r}.",
            field=unknown[0],
        )


def _location(loc: Any) -> str | None:
    # Ninja reports ("body", "payload", "to"): keep the client's own names
    # (one of which may itself be "body").
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:]
    if parts and parts[0] in {"payload", "filters"}:
        parts = parts[1:]
    return ".".join(parts) or None


def install(api: NinjaAPI) -> None:
    """Answer every exception the API can meet with the one error shape."""

    @api.exception_handler(ApiError)
    def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        return error_response(
            exc.code, exc.message, field=exc.field, headers=exc.headers
        )

    @api.exception_handler(KeyRefused)
    def _refused(request: HttpRequest, exc: KeyRefused) -> HttpResponse:
        logger.info("api key refused code=%s", exc.code)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        return error_response(exc.code, exc.message, headers=headers)

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_response(
            "missing_key",
            "Send the API key as `Authorization: Bearer <key>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )

    @api.exception_handler(NinjaValidationError)
    def _invalid(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        message = str(first.get("msg", "The request is not valid."))
        return error_response(
            "validation_error", message, field=_location(first.get("loc", ()))
        )

    @api.exception_handler(ValidationError)
    def _refused_by_service(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        error = from_validation_error(exc)
        return error_response(error.code, error.message, field=error.field)

    @api.exception_handler(InsufficientCredit)
    def _no_credit(request: HttpRequest, exc: InsufficientCredit) -> HttpResponse:
        return error_response("insufficient_credit", str(exc))

    @api.exception_handler(PermissionDenied)
    def _denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return error_response(
            "permission_denied", str(exc) or "The key's user may not do this."
        )

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        # The same words whether the id is another organisation's or no one's.
        return error_response("not_found", "Not found.")

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 405:
            return error_response("method_not_allowed", "Method not allowed.")
        if exc.status_code == 404:
            return error_response("not_found", "Not found.")
        return error_response("validation_error", str(exc.message))

    @api.exception_handler(Exception)
    def _bug(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Only a real fault lands here; the message stays generic so that no
        # internal detail (or client data) leaves in the response.
        logger.error(
            "api fault path=%s key_id=%s",
            request.path,
            getattr(getattr(request, "auth", None), "pk", None),
            exc_info=exc,
        )
        return error_response("internal_error", "Something went wrong on our side.")
