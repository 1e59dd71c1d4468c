"""Security headers, cookie flags and CSRF on every form, as a browser sees them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tmc.identity.access import ACCESS_ATTRIBUTE
from tmc.identity.models import User
from tmc.identity.sessions import DEVICE_COOKIE
from tmc.messaging.models import Message
from tmc.testing import PASSWORD, SECOND_PASSWORD, SENDER, Tenant

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def _csp(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def _pages(tenant: Tenant) -> list[tuple[Client, str]]:
    """A public page, a signed-in page and a control area, with their browsers."""
    controller = tenant.client_for(tenant.controller, second_factor=True)
    return [(Client(), "/login/"), (controller, "/"), (controller, "/users/")]


def _token(client: Client) -> str:
    return client.cookies[django_settings.CSRF_COOKIE_NAME].value


def _csrf_checked_client(user: User) -> Client:
    """A browser that enforces CSRF, signed in with the second password."""
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    response = client.post(
        "/login/",
        {
            "username": user.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": _token(client),
        },
    )
    assert response.status_code == 302
    response = client.post(
        "/second-password/",
        {"second_password": SECOND_PASSWORD, "csrfmiddlewaretoken": _token(client)},
    )
    assert response.status_code == 302
    return client


# --- headers -----------------------------------------------------------------


def test_pages_carry_a_content_security_policy_without_inline_scripts(
    tenant_a: Tenant,
) -> None:
    """Policy: a Content-Security-Policy allows our own scripts, never inline ones."""
    for client, path in _pages(tenant_a):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = _csp(response)
        assert policy.get("default-src") == ["'self'"], path
        scripts = policy.get("script-src", policy["default-src"])
        assert "'unsafe-inline'" not in scripts, path
        assert "'unsafe-eval'" not in scripts, path
        assert policy.get("frame-ancestors") == ["'none'"], path
        # The pages keep to it: no inline script for the policy to block.
        assert not INLINE_SCRIPT.search(response.content.decode()), path


def test_pages_forbid_sniffing_framing_and_cross_origin_referrers(
    tenant_a: Tenant,
) -> None:
    """Policy: nosniff, same-origin Referrer-Policy, and no framing."""
    for client, path in _pages(tenant_a):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "same-origin", path
        assert response.headers["X-Frame-Options"] == "DENY", path


def test_pages_for_signed_in_users_are_never_stored(tenant_a: Tenant) -> None:
    """Policy: pages for signed-in users are not cached (Cache-Control no-store)."""
    user = tenant_a.client_for(tenant_a.user)
    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)

    for client, path in [
        (user, "/"),
        (user, "/messages/"),
        (user, "/messages/compose/"),
        (user, "/account/"),
        (controller, "/users/"),
        (controller, "/activity/"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "no-store" in response.headers.get("Cache-Control", ""), path


def test_hsts_is_sent_over_https(settings: Any, db: None) -> None:
    """Policy: HTTPS only; browsers are told to insist on it (HSTS)."""
    settings.SECURE_HSTS_SECONDS = 31536000

    secure = Client().get("/login/", secure=True)

    assert secure.headers["Strict-Transport-Security"] == (
        "max-age=31536000; includeSubDomains"
    )


# --- cookies -----------------------------------------------------------------


def test_production_settings_send_cookies_over_https_only() -> None:
    """Policy: cookies travel over HTTPS only in production."""
    assert django_settings.DEBUG is False
    assert django_settings.SESSION_COOKIE_SECURE is True
    assert django_settings.CSRF_COOKIE_SECURE is True


def test_the_session_cookie_is_http_only_same_site_and_secure(
    tenant_a: Tenant,
) -> None:
    """Policy: the session cookie is HttpOnly, SameSite=Lax and Secure."""
    client = Client()

    response = client.post(
        "/login/", {"username": tenant_a.user.username, "password": PASSWORD}
    )

    assert response.status_code == 302
    cookie = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie.value
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert "Secure" in cookie.output()


def test_the_csrf_and_device_cookies_are_secure_too(tenant_a: Tenant) -> None:
    """Policy: every cookie that matters is Secure, HttpOnly and SameSite=Lax."""
    client = Client()
    csrf = client.get("/login/").cookies[django_settings.CSRF_COOKIE_NAME]
    device = client.post(
        "/login/",
        {"username": tenant_a.user.username, "password": PASSWORD, "remember": "on"},
    ).cookies[DEVICE_COOKIE]

    for cookie in (csrf, device):
        assert cookie["secure"] is True, cookie.key
        assert cookie["httponly"] is True, cookie.key
        assert cookie["samesite"] == "Lax", cookie.key


# --- CSRF --------------------------------------------------------------------


def test_the_log_in_form_refuses_a_post_without_a_csrf_token(
    tenant_a: Tenant,
) -> None:
    """Policy: CSRF protection on every form, log-in included."""
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    form = {"username": tenant_a.user.username, "password": PASSWORD}

    assert client.post("/login/", form).status_code == 403
    assert client.get("/").status_code == 302  # not signed in

    form["csrfmiddlewaretoken"] = _token(client)
    assert client.post("/login/", form).status_code == 302


@pytest.mark.parametrize(
    ("path", "form"),
    [
        (
            "/messages/compose/",
            {"recipient": "07400 123456", "sender": SENDER, "body": "Hi"},
        ),
        (
            "/users/new/",
            {
                "username": "acme-new",
                "email": "new@acme.example",
                "role": "user",
                "is_active": "on",
            },
        ),
        (
            "/account/password/",
            {
                "current_password": PASSWORD,
                "new_password": "Tr4vel7s-Far",
                "confirm": "Tr4vel7s-Far",
            },
        ),
    ],
)
def test_forms_of_signed_in_users_refuse_a_post_without_a_csrf_token(
    tenant_a: Tenant, path: str, form: dict[str, str]
) -> None:
    """Policy: CSRF protection on every form."""
    client = _csrf_checked_client(tenant_a.controller)

    response = client.post(path, form)

    assert response.status_code == 403
    assert Message.objects.count() == 0
    assert not User.objects.filter(username="acme-new").exists()
    controller = User.objects.get(pk=tenant_a.controller.pk)
    assert controller.check_password(PASSWORD)

    # The same post with the token is not refused: the token was the reason.
    accepted = client.post(path, {**form, "csrfmiddlewaretoken": _token(client)})
    assert accepted.status_code == 302


def _views(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _views(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append((route, pattern.callback))
    return found


# Server-to-server callbacks from a gateway provider: no browser and no
# session cookie reach them, and each request must carry the provider's
# signature (tmc.gateways.http.views, tmc.gateways.vonage.views), which is
# what a CSRF token would prove.
SIGNED_CALLBACKS = [
    "gateways/http/<slug:provider>/reports/",
    "gateways/http/<slug:provider>/inbound/",
    "gateways/vonage/<slug:provider>/reports/",
    "gateways/vonage/<slug:provider>/inbound/",
]


def test_no_view_is_exempt_from_csrf() -> None:
    """Policy: CSRF protection on every form; only signed callbacks and the
    Bearer-key API opt out."""
    views = _views(get_resolver().url_patterns)

    assert views
    # The API authenticates by Bearer key only and never reads the session
    # cookie, so no cross-site form can act through a browser's cookies
    # there.
    api = {
        id(view)
        for _, view in views
        if getattr(view, ACCESS_ATTRIBUTE, "") == "api-key"
        or getattr(view, "__module__", "").startswith("ninja.")
    }
    exempt = [
        route
        for route, view in views
        if getattr(view, "csrf_exempt", False) and id(view) not in api
    ]
    assert exempt == SIGNED_CALLBACKS
