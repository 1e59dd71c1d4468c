"""The API keys page and the ``tmc apikey`` command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tmc.api.models import ApiKey
from tmc.api.tests.conftest import ApiClient
from tmc.testing import Tenant


def test_the_page_needs_the_second_password(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.controller)

    response = client.get("/api-keys/")

    assert response.status_code == 302
    assert response["Location"].startswith("/second-password/")


def test_a_user_cannot_open_the_page(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)

    assert client.get("/api-keys/").status_code == 403


def test_a_key_made_on_the_page_is_shown_once_and_works(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    made = client.post(
        "/api-keys/",
        {
            "name": "Web shop",
            "user": tenant_a.user.pk,
            "scopes": ["send", "read_messages"],
            "allowed_networks": "127.0.0.1/32",
        },
    )
    raw = made.context["created"].raw
    again = client.get("/api-keys/")

    assert made.status_code == 201
    assert raw.encode() in made.content
    assert raw.encode() not in again.content
    assert made["Cache-Control"] == "no-store, private"
    key = ApiKey.objects.get()
    assert (key.user, key.created_by) == (tenant_a.user, tenant_a.administrator)
    assert key.allowed_networks == ["127.0.0.1/32"]
    assert ApiClient(raw).get("/account/balance").status_code == 200


def test_an_administrator_is_not_offered_the_controller(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = client.post(
        "/api-keys/",
        {"name": "X", "user": tenant_a.controller.pk, "scopes": ["send"]},
    )

    assert response.status_code == 200
    assert "user" in response.context["form"].errors
    assert not ApiKey.objects.exists()


def test_revoking_on_the_page_stops_the_key(tenant_a: Tenant) -> None:
    out = StringIO()
    call_command(
        "apikey", "create", "--org", "Acme", "--user", "acme-user",
        "--scopes", "send", stdout=out, stderr=StringIO(),
    )  # fmt: skip
    raw = out.getvalue().strip()
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(f"/api-keys/{ApiKey.objects.get().pk}/revoke/")

    assert response.status_code == 302
    assert ApiClient(raw).get("/account/balance").json()["error"]["code"] == (
        "revoked_key"
    )


def test_the_command_prints_the_key_alone_on_stdout(tenant_a: Tenant) -> None:
    out, err = StringIO(), StringIO()

    call_command(
        "apikey", "create", "--org", str(tenant_a.organisation.pk),
        "--user", "acme-admin", "--scopes", "send,read_replies",
        "--expires", "2999-12-31", "--ip", "10.0.0.0/8", "--ip", "::1",
        stdout=out, stderr=err,
    )  # fmt: skip

    raw = out.getvalue().strip()
    key = ApiKey.objects.get()
    assert raw.startswith(key.prefix)
    assert raw not in err.getvalue()
    assert key.scopes == ["read_replies", "send"]
    assert key.allowed_networks == ["10.0.0.0/8", "::1/128"]
    assert key.expires_at is not None
    assert key.expires_at.year == 2999


@pytest.mark.parametrize(
    "arguments",
    [
        ["--org", "Nobody", "--user", "acme-user", "--scopes", "send"],
        ["--org", "Acme", "--user", "nobody", "--scopes", "send"],
        ["--org", "Acme", "--user", "acme-user", "--scopes", "all"],
        ["--org", "Acme", "--user", "acme-user", "--scopes", "send", "--ip", "x"],
        ["--org", "Acme", "--user", "acme-user", "--scopes", "send", "--expires", "x"],
    ],
)
def test_the_command_refuses_bad_input(tenant_a: Tenant, arguments: list[str]) -> None:
    with pytest.raises(CommandError):
        call_command("apikey", "create", *arguments, stdout=StringIO())

    assert not ApiKey.objects.exists()


def test_the_list_shows_prefixes_never_keys(tenant_a: Tenant) -> None:
    created = StringIO()
    call_command(
        "apikey", "create", "--org", "Acme", "--user", "acme-user",
        "--scopes", "send", stdout=created, stderr=StringIO(),
    )  # fmt: skip
    listing = StringIO()

    call_command("apikey", "list", "--org", "Acme", stdout=listing)

    assert created.getvalue().strip() not in listing.getvalue()
    assert ApiKey.objects.get().prefix in listing.getvalue()


def test_the_page_is_not_for_anonymous_visitors(db: None) -> None:
    assert Client().get("/api-keys/").status_code == 302
