"""The REST API, version 1, under /api/v1/.

Every operation needs an API key (``Authorization: Bearer``) except the
OpenAPI document and its docs page. The docs page is Swagger UI from the
files django-ninja ships, served by whitenoise: no third-party origin, so
the strict CSP holds.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern, URLResolver
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger
from ninja.parser import Parser

from tmc.api import errors
from tmc.api.auth import ApiKeyAuth
from tmc.api.endpoints import account, campaigns, contacts, messages, replies
from tmc.identity.access import ACCESS_ATTRIBUTE

DESCRIPTION = """\
Send texts and Boomerang questions, read messages and replies, and keep the
address book, as one user of your account. Keys are made by Controllers and
Administrators (Settings → API keys, or `tmc apikey create`) and act with
that user's permissions and limits, narrowed by the key's scopes.

Every error has the shape `{"error": {"code", "message", "field"}}`.
Codes: """ + ", ".join(
    f"`{code}` ({status})" for code, (status, _) in errors.CODES.items()
)


def _storable(value: Any) -> bool:
    """True when every string in ``value`` can be stored as it is.

    JSON allows a NUL character (PostgreSQL text cannot hold one) and a lone
    surrogate such as ``"\\ud800"`` (UTF-8, and so encryption, cannot carry
    one); both are refused here, for every field at once.
    """
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


class JsonParser(Parser):
    """JSON bodies, and query strings, whose text can be stored."""

    def parse_body(self, request: HttpRequest) -> Any:
        data = super().parse_body(request)
        if not _storable(data):
            raise errors.ApiError(
                "validation_error",
                "The body has a NUL character or text that is not valid Unicode.",
            )
        return data

    def parse_querydict(
        self,
        data: MultiValueDict[str, Any],
        list_fields: list[str],
        request: HttpRequest,
    ) -> dict[str, Any]:
        parsed = super().parse_querydict(data, list_fields, request)
        if not _storable(parsed):
            raise errors.ApiError("validation_error", "The query has a NUL character.")
        return parsed


api = NinjaAPI(
    parser=JsonParser(),
    title="TMC API",
    version="1.0.0",
    description=DESCRIPTION,
    auth=ApiKeyAuth(),
    urls_namespace="api-v1",
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)
api.add_router("/", messages.router)
api.add_router("/", campaigns.router)
api.add_router("/", replies.router)
api.add_router("/", contacts.router)
api.add_router("/", account.router)

# Ninja's own pages (the schema, the docs) answer to anyone; every other
# operation checks its key.
PUBLIC_NAMES = {"openapi-json", "openapi-view"}


def _marked(patterns: list[Any]) -> list[Any]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            _marked(entry.url_patterns)
        elif isinstance(entry, URLPattern):
            rule = "public" if entry.name in PUBLIC_NAMES else "api-key"
            setattr(entry.callback, ACCESS_ATTRIBUTE, rule)
    return patterns


def urls() -> tuple[list[Any], str, str]:
    patterns, app_name, namespace = api.urls
    return _marked(list(patterns)), app_name, namespace
