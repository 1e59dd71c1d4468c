"""Log-in, lockout after five failures, unlock by the Controller, hashing.

Docstrings name the clause each test proves: "C<n>" is clause n of the
published policy's "Clients and Users Security", "DB7" is clause 7 of its
"Database, networking and application security" (docs/security-policy.md).
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import close_old_connections, connection
from django.test import Client
from django.urls import reverse

from tmc.audit.models import Event
from tmc.identity.models import User, UserSession
from tmc.identity.services import (
    ACCOUNT_LOCKED,
    WRONG_CREDENTIALS,
    LoginResult,
    login_attempt,
)
from tmc.testing import PASSWORD, FastArgon2PasswordHasher, Tenant, make_tenant

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse as Response


WRONG = "Wrong-passw0rd"
LOCKED_WORDS = "This account is locked after too many failed attempts"
ERROR_BOX = re.compile(r'<div class="error-box" role="alert">(.*?)</div>', re.S)


def _log_in(client: Client, username: str, password: str) -> Response:
    return client.post(
        reverse("identity:login"), {"username": username, "password": password}
    )


def _error_box(response: Response) -> str:
    found = ERROR_BOX.search(response.content.decode())
    assert found is not None, "the log-in page shows no error"
    return found.group(1).strip()


def _signed_in(client: Client) -> bool:
    return client.get(reverse("accounts:dashboard")).status_code == 200


def _fail(user: User, times: int) -> list[LoginResult]:
    return [login_attempt(username=user.username, password=WRONG) for _ in range(times)]


def _reload(user: User) -> User:
    return User.objects.get(pk=user.pk)


# --- log in ------------------------------------------------------------------


def test_a_username_and_password_log_in(tenant_a: Tenant) -> None:
    """C2: "Access to the system is via a username and password."""
    client = Client()

    response = _log_in(client, "acme-user", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:dashboard")
    assert _signed_in(client)
    assert UserSession.objects.filter(user=tenant_a.user).count() == 1
    assert Event.objects.filter(action="login.succeeded", actor=tenant_a.user).exists()


def test_the_username_is_not_case_sensitive(tenant_a: Tenant) -> None:
    """C2: the username identifies the user whatever case it is typed in."""
    client = Client()

    response = _log_in(client, "  ACME-User ", PASSWORD)

    assert response.status_code == 302
    assert _signed_in(client)
    assert UserSession.objects.get().user == tenant_a.user


def test_a_wrong_password_gives_the_generic_error_and_no_session(
    tenant_a: Tenant,
) -> None:
    """C2: a wrong password gets the one generic answer and no session."""
    client = Client()

    response = _log_in(client, "acme-user", WRONG)

    assert response.status_code == 200
    assert _error_box(response) == f"<p>{WRONG_CREDENTIALS}</p>"
    assert not _signed_in(client)
    assert UserSession.objects.count() == 0
    assert _reload(tenant_a.user).failed_login_attempts == 1


def test_an_unknown_username_gets_the_same_answer_as_a_wrong_password(
    tenant_a: Tenant,
) -> None:
    """C2: the answer never reveals whether a username exists."""
    unknown = _log_in(Client(), "nobody-here", WRONG)
    known = _log_in(Client(), "acme-user", WRONG)

    assert unknown.status_code == known.status_code == 200
    assert _error_box(unknown) == _error_box(known)


# --- lockout -------------------------------------------------------------------


def test_five_failed_attempts_lock_the_account(tenant_a: Tenant) -> None:
    """C9: "After 5 incorrect attempts the account is locked."""
    client = Client()
    for _ in range(4):
        _log_in(client, "acme-user", WRONG)
    assert _reload(tenant_a.user).locked_at is None

    _log_in(client, "acme-user", WRONG)

    user = _reload(tenant_a.user)
    assert user.locked_at is not None
    assert user.failed_login_attempts == 5
    assert Event.objects.filter(action="user.locked", target_id=str(user.pk)).exists()


def test_the_right_password_is_refused_once_the_account_is_locked(
    tenant_a: Tenant,
) -> None:
    """C9: "Users are allowed 5 attempts": the 6th fails, even if right."""
    client = Client()
    for _ in range(5):
        _log_in(client, "acme-user", WRONG)

    response = _log_in(client, "acme-user", PASSWORD)

    assert response.status_code == 200
    assert LOCKED_WORDS in _error_box(response)
    assert not _signed_in(client)
    assert UserSession.objects.count() == 0


def test_a_locked_account_answers_a_wrong_password_like_any_wrong_password(
    tenant_a: Tenant,
) -> None:
    """C9: only the right password learns that the account is locked."""
    before_lock = _log_in(Client(), "acme-user", WRONG)
    for _ in range(4):
        _log_in(Client(), "acme-user", WRONG)
    assert _reload(tenant_a.user).locked_at is not None

    after_lock = _log_in(Client(), "acme-user", WRONG)
    right = _log_in(Client(), "acme-user", PASSWORD)

    assert _error_box(after_lock) == _error_box(before_lock)
    assert "locked" not in _error_box(after_lock).lower()
    assert LOCKED_WORDS in _error_box(right)
    wrong_result = login_attempt(username="acme-user", password=WRONG)
    right_result = login_attempt(username="acme-user", password=PASSWORD)
    assert wrong_result == LoginResult(None, WRONG_CREDENTIALS)
    assert right_result == LoginResult(None, ACCOUNT_LOCKED)


def test_a_successful_log_in_resets_the_failure_count(tenant_a: Tenant) -> None:
    """C9: the 5 attempts are consecutive; a success starts the count again."""
    _fail(tenant_a.user, 4)

    assert login_attempt(username="acme-user", password=PASSWORD).user is not None
    assert _reload(tenant_a.user).failed_login_attempts == 0

    _fail(tenant_a.user, 4)
    user = _reload(tenant_a.user)
    assert user.failed_login_attempts == 4
    assert user.locked_at is None
    assert login_attempt(username="acme-user", password=PASSWORD).user == user


def test_many_wrong_attempts_lock_once_and_keep_a_consistent_count(
    tenant_a: Tenant,
) -> None:
    """C9: attempts beyond the 5th never unlock, recount or lock again."""
    results = _fail(tenant_a.user, 12)

    assert all(r.user is None for r in results)
    user = _reload(tenant_a.user)
    assert user.locked_at is not None
    assert user.failed_login_attempts == 5
    assert Event.objects.filter(action="user.locked").count() == 1
    assert login_attempt(username="acme-user", password=PASSWORD) == LoginResult(
        None, ACCOUNT_LOCKED
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_attempts_still_lock_the_account() -> None:
    """C9: 12 simultaneous wrong attempts lock after 5, never slip past."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella")
    username = tenant.user.username
    outcomes: list[LoginResult] = []
    start = threading.Barrier(12)

    def attempt() -> None:
        start.wait()
        try:
            outcomes.append(login_attempt(username=username, password=WRONG))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 12
    assert all(o == LoginResult(None, WRONG_CREDENTIALS) for o in outcomes)
    user = _reload(tenant.user)
    assert user.locked_at is not None
    assert user.failed_login_attempts == 5
    assert (
        Event.objects.filter(action="user.locked", target_id=str(user.pk)).count() == 1
    )
    assert (
        Event.objects.filter(action="login.failed", target_id=str(user.pk)).count() == 5
    )
    assert login_attempt(username=username, password=PASSWORD) == LoginResult(
        None, ACCOUNT_LOCKED
    )


def _replay(user: User) -> tuple[int, bool, int]:
    """Check the user's log-in events, in log order, against the lockout rule.

    The row lock admits attempts one at a time and each writes its events
    inside it, so the organisation chain's order is the order they were
    decided in. Returns the failure count, whether the account is locked,
    and how many log-ins succeeded.
    """
    failures, locked, successes = 0, False, 0
    events = Event.objects.filter(
        actor=user,
        action__in=[
            "login.failed",
            "login.succeeded",
            "login.refused_locked",
            "user.locked",
        ],
    ).order_by("sequence")
    for event in events:
        if event.action == "login.failed":
            assert not locked, "a failure was counted after the lock"
            failures += 1
            assert event.details["attempt"] == failures
        elif event.action == "user.locked":
            assert (failures, locked) == (5, False), "locked at the wrong count"
            locked = True
        elif event.action == "login.succeeded":
            assert not locked, "a log-in succeeded after the lock"
            failures = 0
            successes += 1
        else:
            assert locked, "refused as locked before the lock"
    return failures, locked, successes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("before", "wrong", "right"),
    [(4, 1, 9), (0, 6, 4)],
    ids=["4 failed, then 1 wrong and 9 right at once", "6 wrong and 4 right at once"],
)
def test_the_sixth_attempt_fails_even_with_the_right_password_under_concurrency(
    before: int, wrong: int, right: int
) -> None:
    """C9: "the sixth never succeeds, even with the right password", at once.

    After ``before`` failures, ``wrong`` wrong and ``right`` right attempts
    arrive together. Whatever order the row lock gives them, the log must
    replay as the rule says (a success resets the count, the fifth failure
    in a row locks, nothing succeeds after the lock), the stored account
    must match the replay, and every answer must match its event.
    """
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella")
    username = tenant.user.username
    _fail(tenant.user, before)
    passwords = [WRONG] * wrong + [PASSWORD] * right
    outcomes: list[tuple[str, LoginResult]] = []
    start = threading.Barrier(len(passwords))

    def attempt(password: str) -> None:
        start.wait()
        try:
            result = login_attempt(username=username, password=password)
            outcomes.append((password, result))
        finally:
            close_old_connections()

    threads = [threading.Thread(target=attempt, args=(p,)) for p in passwords]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == len(passwords)
    failures, locked, successes = _replay(tenant.user)
    user = _reload(tenant.user)
    assert user.failed_login_attempts == failures
    assert (user.locked_at is not None) == locked == (failures == 5)
    # Each attempt was decided once, and its answer says what was decided.
    decided = Event.objects.filter(
        actor=user,
        action__in=["login.failed", "login.succeeded", "login.refused_locked"],
    )
    assert decided.count() == before + len(passwords)
    assert sum(1 for _, result in outcomes if result.user) == successes
    for password, result in outcomes:
        if password == WRONG:
            assert result == LoginResult(None, WRONG_CREDENTIALS)
        elif result.user is None:
            assert locked
            assert result == LoginResult(None, ACCOUNT_LOCKED)
    if locked:
        assert user.locked_at is not None
        assert user.last_login is None or user.last_login < user.locked_at
        assert login_attempt(username=username, password=PASSWORD) == LoginResult(
            None, ACCOUNT_LOCKED
        )
    if (before, wrong) == (4, 1):
        # One wrong attempt either came first and locked the account, so all
        # nine right ones were refused, or came after a success and did not.
        assert (locked, successes) in {(True, 0), (False, 9)}


# --- unlock --------------------------------------------------------------------


def _unlock_url(user: User) -> str:
    return reverse("identity:user_unlock", args=[user.pk])


def test_a_controller_unlocks_a_locked_user_and_it_is_logged(
    tenant_a: Tenant,
) -> None:
    """C9: "The account can be unlocked by the company controller"; C11 logs it."""
    _fail(tenant_a.user, 5)
    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = controller.post(_unlock_url(tenant_a.user))

    assert response.status_code == 302
    user = _reload(tenant_a.user)
    assert user.locked_at is None
    assert user.failed_login_attempts == 0
    event = Event.objects.get(action="user.unlocked")
    assert event.actor == tenant_a.controller
    assert event.organisation == tenant_a.organisation
    assert event.target_id == str(user.pk)
    client = Client()
    assert _log_in(client, "acme-user", PASSWORD).status_code == 302
    assert _signed_in(client)


def test_a_controller_unlocks_without_the_create_users_permission(
    tenant_a: Tenant,
) -> None:
    """C9: the company Controller unlocks, whatever their other permissions.

    It stays a control area: the second password is still asked for.
    """
    _fail(tenant_a.user, 5)
    User.objects.filter(pk=tenant_a.controller.pk).update(can_create_users=False)
    before_second = tenant_a.client_for(tenant_a.controller)
    asked = before_second.post(_unlock_url(tenant_a.user))
    assert asked["Location"].startswith(reverse("identity:second_factor"))
    assert _reload(tenant_a.user).locked_at is not None
    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)

    listing = controller.get(reverse("identity:users"))
    response = controller.post(_unlock_url(tenant_a.user))

    assert listing.status_code == 200
    assert _unlock_url(tenant_a.user) in listing.content.decode()
    assert reverse("identity:user_new") not in listing.content.decode()
    assert response.status_code == 302
    user = _reload(tenant_a.user)
    assert (user.locked_at, user.failed_login_attempts) == (None, 0)
    assert Event.objects.get(action="user.unlocked").actor == tenant_a.controller


def test_an_administrator_may_not_unlock(tenant_a: Tenant) -> None:
    """C9: unlocking is the Controller's, not the Administrator's."""
    _fail(tenant_a.user, 5)
    administrator = tenant_a.client_for(tenant_a.administrator, second_factor=True)

    response = administrator.post(_unlock_url(tenant_a.user))

    assert response.status_code == 403
    assert _reload(tenant_a.user).locked_at is not None
    assert not Event.objects.filter(action="user.unlocked").exists()


def test_a_user_may_not_unlock(tenant_a: Tenant) -> None:
    """C9: a User cannot unlock anyone, themselves included."""
    _fail(tenant_a.administrator, 5)
    user = tenant_a.client_for(tenant_a.user)

    response = user.post(_unlock_url(tenant_a.administrator))

    assert response.status_code == 403
    assert _reload(tenant_a.administrator).locked_at is not None


def test_another_organisations_controller_gets_not_found(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """C9: only "the company controller": another company's sees nothing."""
    _fail(tenant_a.user, 5)
    outsider = tenant_b.client_for(tenant_b.controller, second_factor=True)

    response = outsider.post(_unlock_url(tenant_a.user))

    assert response.status_code == 404
    assert _reload(tenant_a.user).locked_at is not None
    assert not Event.objects.filter(action="user.unlocked").exists()


def test_unlocking_needs_the_second_password(tenant_a: Tenant) -> None:
    """C3: a Controller enters the second password before unlocking."""
    _fail(tenant_a.user, 5)
    controller = tenant_a.client_for(tenant_a.controller)

    response = controller.post(_unlock_url(tenant_a.user))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("identity:second_factor"))
    assert _reload(tenant_a.user).locked_at is not None


# --- password hashing ----------------------------------------------------------


def _count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    encode = FastArgon2PasswordHasher.encode
    verify = FastArgon2PasswordHasher.verify

    def counting_encode(
        self: FastArgon2PasswordHasher, password: str, salt: str
    ) -> str:
        calls.append("encode")
        return encode(self, password, salt)

    def counting_verify(
        self: FastArgon2PasswordHasher, password: str, encoded: str
    ) -> bool:
        calls.append("verify")
        return verify(self, password, encoded)

    monkeypatch.setattr(FastArgon2PasswordHasher, "encode", counting_encode)
    monkeypatch.setattr(FastArgon2PasswordHasher, "verify", counting_verify)
    return calls


def test_an_unknown_username_costs_one_password_hash(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C2: unknown usernames take as long as wrong passwords (no enumeration)."""
    calls = _count_hashing(monkeypatch)

    result = login_attempt(username="nobody-here", password=WRONG)

    assert result == LoginResult(None, WRONG_CREDENTIALS)
    assert len(calls) == 1


def test_a_wrong_password_costs_one_password_hash(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C2: a known username with a wrong password costs the same one hash."""
    calls = _count_hashing(monkeypatch)

    result = login_attempt(username="acme-user", password=WRONG)

    assert result == LoginResult(None, WRONG_CREDENTIALS)
    assert calls == ["verify"]


def test_passwords_are_stored_as_argon2id(tenant_a: Tenant) -> None:
    """DB7: "client passwords are stored as an encoded hash" (Argon2id)."""
    for user in (tenant_a.controller, tenant_a.administrator, tenant_a.user):
        stored = _reload(user)
        assert stored.password.startswith("argon2$argon2id$")
        assert PASSWORD not in stored.password
    assert _reload(tenant_a.controller).second_password.startswith("argon2$argon2id$")


def test_hash_parameters_upgrade_at_the_next_log_in(
    tenant_a: Tenant, settings: Any
) -> None:
    """DB7: a hash made with older costs is rehashed with today's at log-in."""
    production = Argon2PasswordHasher()
    before = production.decode(_reload(tenant_a.user).password)
    assert (before["memory_cost"], before["time_cost"]) == (1024, 1)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]

    assert _log_in(Client(), "acme-user", PASSWORD).status_code == 302

    stored = _reload(tenant_a.user).password
    after = production.decode(stored)
    assert stored.startswith("argon2$argon2id$")
    assert after["memory_cost"] == production.memory_cost
    assert after["time_cost"] == production.time_cost
    assert after["parallelism"] == production.parallelism
    assert not production.must_update(stored)
