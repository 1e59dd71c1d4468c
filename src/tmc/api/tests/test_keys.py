"""Each rule an API key is held to, checked on every request."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from tmc.api.models import ApiKey, Scope
from tmc.api.services import api_key_create, api_key_revoke, key_digest
from tmc.api.tests.conftest import ApiClient, MakeClient
from tmc.audit.models import Event
from tmc.identity.models import User
from tmc.testing import Tenant


def _error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    error: dict[str, Any] = body["error"]
    return error


def test_only_a_digest_of_the_key_is_stored(tenant_a: Tenant) -> None:
    created = api_key_create(
        actor=tenant_a.controller, user=tenant_a.user, name="Shop", scopes=["send"]
    )

    stored = ApiKey.objects.get()
    assert created.raw.startswith("tmc_")
    assert len(created.raw) > 40
    assert stored.digest == key_digest(created.raw)
    assert created.raw not in repr(ApiKey.objects.values().get())
    assert stored.prefix == created.raw[:12]


def test_creation_and_revocation_are_logged(tenant_a: Tenant) -> None:
    created = api_key_create(
        actor=tenant_a.administrator, user=tenant_a.user, name="Shop", scopes=["send"]
    )
    api_key_revoke(actor=tenant_a.administrator, key=created.key)

    actions = list(
        Event.objects.filter(action__startswith="api_key.").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]
    for event in Event.objects.filter(action__startswith="api_key."):
        assert created.raw not in str(event.details)


def test_an_administrator_cannot_make_a_controllers_key(tenant_a: Tenant) -> None:
    with pytest.raises(PermissionDenied):
        api_key_create(
            actor=tenant_a.administrator,
            user=tenant_a.controller,
            name="Too much",
            scopes=["send"],
        )


def test_no_one_makes_a_key_for_another_organisation(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    with pytest.raises(PermissionDenied):
        api_key_create(
            actor=tenant_a.controller, user=tenant_b.user, name="X", scopes=["send"]
        )


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"scopes": []}, "scopes"),
        ({"scopes": ["everything"]}, "scopes"),
        ({"allowed_networks": ["10.0.0.0/33"]}, "allowed_networks"),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "expires_at"),
        ({"name": " "}, "name"),
    ],
)
def test_a_bad_key_request_is_refused(
    tenant_a: Tenant, options: dict[str, Any], field: str
) -> None:
    arguments: dict[str, Any] = {"name": "Shop", "scopes": ["send"], **options}

    with pytest.raises(ValidationError) as refused:
        api_key_create(actor=tenant_a.controller, user=tenant_a.user, **arguments)

    assert field in refused.value.message_dict
    assert not ApiKey.objects.exists()


def test_no_key_is_401_missing_key(tenant_a: Tenant) -> None:
    response = Client().get("/api/v1/account/balance")

    assert response.status_code == 401
    assert _error(response)["code"] == "missing_key"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer tmc_nope", "Basic abc", "Bearer "])
def test_a_wrong_key_is_401_invalid_key(tenant_a: Tenant, header: str) -> None:
    response = Client(HTTP_AUTHORIZATION=header).get("/api/v1/account/balance")

    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_key"


def test_a_revoked_key_stops_at_once(tenant_a: Tenant) -> None:
    created = api_key_create(
        actor=None, user=tenant_a.user, name="Shop", scopes=["read_messages"]
    )
    api = ApiClient(created.raw)
    assert api.get("/account/balance").status_code == 200

    api_key_revoke(actor=tenant_a.controller, key=created.key)
    response = api.get("/account/balance")

    assert response.status_code == 401
    assert _error(response)["code"] == "revoked_key"


def test_an_expired_key_is_401(tenant_a: Tenant) -> None:
    created = api_key_create(
        actor=None,
        user=tenant_a.user,
        name="Shop",
        scopes=["send"],
        expires_at=timezone.now() + timedelta(hours=1),
    )
    ApiKey.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = ApiClient(created.raw).get("/account/balance")

    assert response.status_code == 401
    assert _error(response)["code"] == "expired_key"


def test_a_locked_users_key_is_401(tenant_a: Tenant, api_for: MakeClient) -> None:
    api = api_for(tenant_a.user)
    User.objects.filter(pk=tenant_a.user.pk).update(locked_at=timezone.now())

    response = api.get("/account/balance")

    assert response.status_code == 401
    assert _error(response)["code"] == "user_unavailable"


def test_a_key_outside_its_networks_is_403(tenant_a: Tenant) -> None:
    created = api_key_create(
        actor=None,
        user=tenant_a.user,
        name="Office",
        scopes=["send"],
        allowed_networks=["192.0.2.0/24", "2001:db8::/32"],
    )

    inside = Client(
        HTTP_AUTHORIZATION=f"Bearer {created.raw}", REMOTE_ADDR="192.0.2.7"
    ).get("/api/v1/account/balance")
    outside = Client(
        HTTP_AUTHORIZATION=f"Bearer {created.raw}", REMOTE_ADDR="198.51.100.1"
    ).get("/api/v1/account/balance")

    assert inside.status_code == 200
    assert outside.status_code == 403
    assert _error(outside)["code"] == "ip_not_allowed"


def test_each_endpoint_wants_its_scope(tenant_a: Tenant, api_for: MakeClient) -> None:
    api = api_for(tenant_a.user, scopes=[Scope.READ_REPLIES])

    send = api.post("/messages", {"to": "07400 123456", "body": "Hi"})
    read = api.get("/messages")

    assert send.status_code == read.status_code == 403
    assert _error(send)["code"] == _error(read)["code"] == "scope_missing"


def test_use_is_recorded_without_a_write_per_request(
    tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)

    api.get("/account/balance", REMOTE_ADDR="127.0.0.1")
    first = ApiKey.objects.get().last_used_at
    api.get("/account/balance", REMOTE_ADDR="127.0.0.1")

    key = ApiKey.objects.get()
    assert first is not None
    assert key.last_used_at == first
    assert key.last_used_ip == "127.0.0.1"


def test_a_key_never_signs_anyone_in(tenant_a: Tenant, api_for: MakeClient) -> None:
    api = api_for(tenant_a.controller)

    response = api.get("/account/balance")

    assert response.status_code == 200
    assert "sessionid" not in response.cookies


def test_a_signed_in_browser_is_not_an_api_client(tenant_a: Tenant) -> None:
    """The API reads no cookie, so a session cannot be ridden cross-site."""
    browser = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = browser.post(
        "/api/v1/messages",
        {"to": "07400 123456", "body": "Hi"},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert _error(response)["code"] == "missing_key"
