"""Password reset, the managers' security emails, and changing a password.

Docstrings name the clause each test proves: "C<n>" is clause n of the
published policy's "Clients and Users Security" (docs/security-policy.md);
"ASVS" marks rules the platform adds from OWASP ASVS 5.0.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.tokens import (
    PasswordResetTokenGenerator,
    default_token_generator,
)
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import Client, TestCase
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from tmc.audit.models import Event
from tmc.identity.models import User
from tmc.testing import PASSWORD, CommitCapture, Tenant

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response


WRONG = "Wrong-passw0rd"
NEW_PASSWORD = "Fresh-Kettle-Walk-42"
LINK = re.compile(r"https?://[^/\s]+(/password-reset/[^/\s]+/[^/\s]+/)")
GONE = "This link no longer works"


def _managers(tenant: Tenant) -> set[str]:
    return {tenant.controller.email, tenant.administrator.email}


def _to(emails: list[EmailMessage], subject: str) -> set[str]:
    return {address for e in emails if e.subject == subject for address in e.to}


def _assert_text_and_html(email: EmailMessage) -> None:
    assert str(email.body).strip(), f"{email.subject!r} has no text body"
    assert isinstance(email, EmailMultiAlternatives)
    html = [
        content for content, mimetype in email.alternatives if mimetype == "text/html"
    ]
    assert len(html) == 1, f"{email.subject!r} has no HTML alternative"
    assert "<" in str(html[0])


def _request_reset(client: Client, email: str) -> Response:
    """Ask for a reset link, and run what commit starts (the emails)."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(reverse("identity:password_reset"), {"email": email})


def _link_in(email: EmailMessage) -> str:
    found = LINK.search(str(email.body))
    assert found is not None, "the email holds no reset link"
    return found.group(1)


def _reset_path(user: User, token: str) -> str:
    return reverse(
        "identity:password_reset_confirm",
        kwargs={"uidb64": urlsafe_base64_encode(force_bytes(user.pk)), "token": token},
    )


def _choose_password(client: Client, link: str, password: str) -> Response:
    opened = client.get(link)
    assert opened.status_code == 302, "the reset link did not open"
    return client.post(
        opened["Location"], {"new_password1": password, "new_password2": password}
    )


def _can_log_in(username: str, password: str) -> bool:
    response = Client().post(
        reverse("identity:login"), {"username": username, "password": password}
    )
    return response.status_code == 302


# --- password reset ---------------------------------------------------------------


def test_a_reset_request_for_a_known_email_sends_one_link(
    tenant_a: Tenant, mailoutbox: list[EmailMessage]
) -> None:
    """C12 "new password requests": the owner is emailed one reset link."""
    response = _request_reset(Client(), tenant_a.user.email)

    assert response.status_code == 302
    assert response["Location"] == reverse("identity:password_reset_done")
    to_owner = [e for e in mailoutbox if e.to == [tenant_a.user.email]]
    assert len(to_owner) == 1
    (email,) = to_owner
    assert _link_in(email).startswith("/password-reset/")
    _assert_text_and_html(email)


def test_a_reset_request_for_an_unknown_email_answers_the_same_and_sends_nothing(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    """ASVS: the reset page never reveals which emails have an account."""
    known = _request_reset(Client(), tenant_a.user.email)
    mailoutbox.clear()

    unknown = _request_reset(Client(), "nobody@nowhere.example")

    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    assert mailoutbox == []
    assert Event.objects.filter(action="password.reset_requested").count() == 1


def test_a_reset_link_works_once(
    tenant_a: Tenant, mailoutbox: list[EmailMessage]
) -> None:
    """ASVS: a reset link sets a password once, then no longer works."""
    _request_reset(Client(), tenant_a.user.email)
    link = _link_in(next(e for e in mailoutbox if e.to == [tenant_a.user.email]))

    response = _choose_password(Client(), link, NEW_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("identity:password_reset_complete")
    assert _can_log_in("acme-user", NEW_PASSWORD)
    assert not _can_log_in("acme-user", PASSWORD)
    again = Client().get(link, follow=True)
    assert again.status_code == 200
    assert GONE in again.content.decode()
    assert Event.objects.filter(action="password.reset", actor=tenant_a.user).exists()


def test_a_reset_link_older_than_an_hour_no_longer_works(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ASVS: a reset link lapses after an hour (PASSWORD_RESET_TIMEOUT)."""
    real_now = PasswordResetTokenGenerator._now

    def minted(minutes_ago: int) -> str:
        with monkeypatch.context() as clock:
            clock.setattr(
                PasswordResetTokenGenerator,
                "_now",
                lambda self: real_now(self) - timedelta(minutes=minutes_ago),
            )
            token: str = default_token_generator.make_token(tenant_a.user)
            return token

    old = Client().get(_reset_path(tenant_a.user, minted(61)))
    fresh = Client().get(_reset_path(tenant_a.user, minted(59)))

    assert old.status_code == 200
    assert GONE in old.content.decode()
    assert fresh.status_code == 302
    assert fresh["Location"].endswith("/set-password/")


def test_managers_are_told_of_a_reset_request(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    """C12: Controllers and Administrators are told of "new password requests"."""
    _request_reset(Client(), tenant_a.user.email)

    subject = "TMC: password reset requested for acme-user"
    assert _to(mailoutbox, subject) == _managers(tenant_a)
    assert len([e for e in mailoutbox if e.subject == subject]) == 2
    assert {a for e in mailoutbox for a in e.to} == {
        tenant_a.user.email,
        *_managers(tenant_a),
    }
    for email in mailoutbox:
        _assert_text_and_html(email)


def test_managers_are_told_when_a_password_is_reset(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    """C10: "Administrators are notified of password changes" (resets too)."""
    _request_reset(Client(), tenant_a.user.email)
    link = _link_in(next(e for e in mailoutbox if e.to == [tenant_a.user.email]))
    mailoutbox.clear()

    with committed(execute=True):
        _choose_password(Client(), link, NEW_PASSWORD)

    subject = "TMC: acme-user reset their password"
    assert _to(mailoutbox, subject) == {tenant_a.administrator.email}
    assert _to(mailoutbox, "TMC: your password was reset") == {tenant_a.user.email}
    assert len(mailoutbox) == 2
    for email in mailoutbox:
        _assert_text_and_html(email)


# --- notifications ------------------------------------------------------------------


def test_managers_are_told_of_a_new_user(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    """C12: "Controllers and Administrators receive notifications of new users"."""
    administrator = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    with committed(execute=True):
        response = administrator.post(
            reverse("identity:user_new"),
            {
                "username": "acme-newbie",
                "full_name": "New Person",
                "email": "newbie@acme.example",
                "role": "user",
                "permissions": ["can_send_bulk"],
                "daily_message_limit": "",
                "monthly_message_limit": "",
                "is_active": "on",
            },
        )

    assert response.status_code == 302
    assert User.objects.filter(username="acme-newbie").exists()
    subject = "TMC: new user acme-newbie in Acme"
    assert _to(mailoutbox, subject) == _managers(tenant_a)
    assert len([e for e in mailoutbox if e.subject == subject]) == 2
    for email in mailoutbox:
        _assert_text_and_html(email)


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_managers_are_told_when_any_user_changes_their_password(
    tenant_a: Tenant,
    mailoutbox: list[EmailMessage],
    committed: CommitCapture,
    role: str,
) -> None:
    """C10: notified of "password changes ... for all access levels".

    The Administrators hear, and so does the user; when the user is the only
    Administrator, the Controllers hear in their place.
    """
    user = getattr(tenant_a, role)
    client = tenant_a.client_for(user)

    with committed(execute=True):
        response = client.post(
            reverse("identity:password_change"),
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )

    assert response.status_code == 302
    told = {tenant_a.administrator.email} - {user.email} or {tenant_a.controller.email}
    subject = f"TMC: {user.username} changed their password"
    assert _to(mailoutbox, subject) == told
    assert _to(mailoutbox, "TMC: your password was changed") == {user.email}
    assert len(mailoutbox) == 2
    for email in mailoutbox:
        _assert_text_and_html(email)


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_managers_are_told_when_an_account_is_locked(
    tenant_a: Tenant,
    mailoutbox: list[EmailMessage],
    committed: CommitCapture,
    role: str,
) -> None:
    """C10: told of "access failures for all access levels (after five attempts)"."""
    username = getattr(tenant_a, role).username
    client = Client()
    with committed(execute=True):
        for _ in range(4):
            client.post(
                reverse("identity:login"), {"username": username, "password": WRONG}
            )
    assert mailoutbox == []

    with committed(execute=True):
        client.post(
            reverse("identity:login"), {"username": username, "password": WRONG}
        )

    locked = getattr(tenant_a, role).email
    told = {tenant_a.administrator.email} - {locked} or {tenant_a.controller.email}
    subject = f"TMC: {username} is locked after 5 failed attempts"
    assert _to(mailoutbox, subject) == told
    assert _to(mailoutbox, "TMC: your account is locked") == {locked}
    assert len(mailoutbox) == 2
    for email in mailoutbox:
        _assert_text_and_html(email)


def test_managers_of_another_organisation_are_not_told(
    tenant_a: Tenant,
    tenant_b: Tenant,
    mailoutbox: list[EmailMessage],
    committed: CommitCapture,
) -> None:
    """C10: notifications go to the user's own organisation's managers only."""
    client = tenant_a.client_for(tenant_a.user)

    with committed(execute=True):
        client.post(
            reverse("identity:password_change"),
            {
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "confirm": NEW_PASSWORD,
            },
        )

    recipients = {a for e in mailoutbox for a in e.to}
    assert recipients == {tenant_a.administrator.email, tenant_a.user.email}
    assert not recipients & _managers(tenant_b)


# --- changing a password ------------------------------------------------------------


def _change(client: Client, current: str, new: str) -> Response:
    return client.post(
        reverse("identity:password_change"),
        {"current_password": current, "new_password": new, "confirm": new},
    )


def test_a_wrong_current_password_is_a_field_error(tenant_a: Tenant) -> None:
    """C2: changing the password needs the current one."""
    client = tenant_a.client_for(tenant_a.user)

    response = _change(client, WRONG, NEW_PASSWORD)

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="id_current_password_error"' in page
    assert "That is not your password." in page
    assert _can_log_in("acme-user", PASSWORD)
    assert not _can_log_in("acme-user", NEW_PASSWORD)


def test_any_of_the_last_five_passwords_is_refused(tenant_a: Tenant) -> None:
    """Preset password_history=5 (ASVS): none of the last 5 passwords again."""
    client = tenant_a.client_for(tenant_a.user)
    history = [f"Blue-Lantern-{n}-Road{n}x" for n in range(1, 6)]
    current = PASSWORD
    for password in history:
        assert _change(client, current, password).status_code == 302
        current = password

    for reused in history:
        response = _change(client, current, reused)
        assert response.status_code == 200, f"{reused} was accepted again"
        assert "you have not used for your last 5" in response.content.decode()

    assert _change(client, current, PASSWORD).status_code == 302
    assert _can_log_in("acme-user", PASSWORD)


def test_a_valid_change_keeps_the_user_logged_in(tenant_a: Tenant) -> None:
    """C2: a changed password applies at once; this session carries on."""
    client = tenant_a.client_for(tenant_a.user)
    before = client.cookies["sessionid"].value

    response = _change(client, PASSWORD, NEW_PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("identity:account")
    assert client.get(reverse("identity:account")).status_code == 200
    assert client.cookies["sessionid"].value != before
    assert _can_log_in("acme-user", NEW_PASSWORD)
    assert not _can_log_in("acme-user", PASSWORD)


def test_a_password_change_signs_out_the_users_other_sessions(
    tenant_a: Tenant,
) -> None:
    """ASVS: a new password ends the sessions that knew the old one."""
    here = tenant_a.client_for(tenant_a.user)
    elsewhere = tenant_a.client_for(tenant_a.user)

    assert _change(here, PASSWORD, NEW_PASSWORD).status_code == 302

    assert elsewhere.get(reverse("accounts:dashboard")).status_code == 302
    assert here.get(reverse("accounts:dashboard")).status_code == 200
