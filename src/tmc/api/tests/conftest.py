from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tmc.api.models import Scope
from tmc.api.services import api_key_create

ALL_SCOPES = list(Scope.values)


class ApiClient:
    """A test client that sends one API key with every request."""

    def __init__(self, raw_key: str, **extra: Any) -> None:
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}", **extra)

    def get(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.client.get(f"/api/v1{path}", data, **extra)

    def post(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.client.post(
            f"/api/v1{path}", data or {}, content_type="application/json", **extra
        )

    def patch(self, path: str, data: Any = None, **extra: Any) -> Any:
        return self.client.patch(
            f"/api/v1{path}", data or {}, content_type="application/json", **extra
        )

    def delete(self, path: str, **extra: Any) -> Any:
        return self.client.delete(f"/api/v1{path}", **extra)


MakeClient = Callable[..., ApiClient]


@pytest.fixture
def api_for() -> MakeClient:
    """``api_for(user, scopes=[...], **key_options)``: a client with a new key."""

    def make(user: Any, scopes: list[str] | None = None, **options: Any) -> ApiClient:
        created = api_key_create(
            actor=None,
            user=user,
            name="Test key",
            scopes=scopes or ALL_SCOPES,
            **options,
        )
        return ApiClient(created.raw)

    return make
