"""Bearer authentication with API keys, and the checks each endpoint makes."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model
from django.http import HttpRequest
from ninja.security import HttpBearer

from tmc.accounts.scoping import get_for_user_or_404
from tmc.api import ratelimit
from tmc.api.errors import ApiError
from tmc.api.models import ApiKey, Scope
from tmc.api.services import KeyRefused, api_key_check
from tmc.audit.services import client_address
from tmc.identity.models import Permission, User
from tmc.lib.phone import mask_number


class ApiKeyAuth(HttpBearer):
    """``Authorization: Bearer tmc_…``.

    The key is checked on every request (one indexed query), so a revoked
    key stops at once. It never signs anyone in: ``request.user`` stays
    anonymous and no session is made, so a key cannot open a page.
    """

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get(self.header)
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.openapi_scheme or not token.strip():
            raise KeyRefused("invalid_key", "The API key is not valid.")
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:
        key = api_key_check(raw_key=token, address=client_address(request))
        rate_check(key)
        return key


def rate_check(key: ApiKey) -> None:
    """Take a token from the key's bucket, or answer 429 with Retry-After."""
    verdict = ratelimit.take(key.digest[:32])
    if not verdict.allowed:
        raise ApiError(
            "rate_limited",
            "Too many requests with this key; slow down.",
            headers={"Retry-After": str(verdict.retry_after)},
        )


def api_key(request: HttpRequest) -> ApiKey:
    key = getattr(request, "auth", None)
    assert isinstance(key, ApiKey), "endpoint reached without authentication"
    return key


def acting_user(request: HttpRequest, scope: Scope) -> User:
    """The user the key acts as, once the key is known to carry ``scope``."""
    key = api_key(request)
    if not key.has_scope(scope):
        raise ApiError(
            "scope_missing", f"This key does not have the {scope.value!r} scope."
        )
    return key.user


Owned = TypeVar("Owned", bound=Model)


def owned_or_404(model: type[Owned], user: User, object_id: int) -> Owned:
    """The object of ``user``'s organisation with this id, or ``not_found``;
    an id no database column can hold finds nothing rather than failing."""
    if not 0 < object_id < 2**63:
        raise ApiError("not_found", "Not found.")
    return get_for_user_or_404(model, user, pk=object_id)


def number_for(user: User, e164: str) -> str:
    """E.164 for users who may see full numbers, masked for the others."""
    if user.has_permission(Permission.VIEW_FULL_NUMBERS):
        return e164
    return mask_number(e164)
