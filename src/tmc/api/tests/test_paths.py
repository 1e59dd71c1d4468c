"""Unknown paths and wrong methods under /api/ answer in the one error shape."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tmc.api.tests.conftest import MakeClient
from tmc.testing import Tenant


def _error(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    "path", ["/api/v1/nothing", "/api/v2/messages", "/api/", "/api/v1/messages/"]
)
def test_an_unknown_path_is_a_json_404(db: None, path: str) -> None:
    response = Client().get(path, secure=True)

    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/messages", {"GET", "POST"}),
        ("put", "/api/v1/messages/preview", {"POST"}),
        ("get", "/api/v1/account/balance/", None),
    ],
)
def test_a_method_the_path_does_not_take_is_a_json_405(
    tenant_a: Tenant,
    api_for: MakeClient,
    method: str,
    path: str,
    allowed: set[str] | None,
) -> None:
    client = api_for(tenant_a.user).client

    response = getattr(client, method)(path, secure=True)

    if allowed is None:  # a trailing slash names no operation
        assert response.status_code == 404
        return
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"
    assert {m.strip() for m in response["Allow"].split(",")} == allowed


def test_pages_outside_the_api_keep_their_html_404(db: None) -> None:
    response = Client().get("/no-such-page/", secure=True)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


WORDS = ["messages", "preview", "contacts", "groups", "bulk", "replies", "read",
         "opt-outs", "account", "balance", "campaigns", "1", "0", "-1",
         "99999999999999999999"]  # fmt: skip
SEGMENT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), max_size=12
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    segments=st.lists(
        st.one_of(
            st.sampled_from(WORDS),
            SEGMENT,
        ),
        max_size=4,
    ),
    body=st.one_of(st.none(), st.binary(max_size=64), st.just(b"{}")),
)
def test_no_path_method_or_body_gets_a_500(
    tenant_a: Tenant, api_for: MakeClient, method: str, segments: list[str], body: Any
) -> None:
    client = api_for(tenant_a.controller).client
    path = "/api/v1/" + "/".join(segments)

    response = client.generic(
        method, path, body or b"", content_type="application/json", secure=True
    )

    assert response.status_code < 500, (method, path, response.content)
    if response.status_code >= 400:
        assert _error(response)["code"]
