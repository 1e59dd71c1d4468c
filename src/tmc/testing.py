"""Pytest plugin: test environment, two organisations, and a real worker.

Loaded with ``-p tmc.testing`` (see pyproject.toml) so that it runs before
pytest-django reads the settings: it gives the run a private TMC_HOME with
fresh secrets, as in production configuration comes from the environment,
and TMC_DATABASE_URL / TMC_REDIS_URL, when set, move the suite to PostgreSQL
and Redis.

Each organisation has a Controller, an Administrator and a User with known
passwords and an approved sender, so cross-organisation and cross-role checks
take one line.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client

from tmc.lib.keys import ensure_secrets

_home = Path(tempfile.mkdtemp(prefix="tmc-test-home-"))
os.environ["TMC_HOME"] = str(_home)
os.environ.setdefault("TMC_SSL_REDIRECT", "0")
os.environ.setdefault("TMC_SIMULATOR_REPORT_DELAY", "0")
# Worker threads close their connections after each task, so the test
# database can be dropped at the end of the run.
os.environ.setdefault("TMC_DB_CONN_MAX_AGE", "0")
# A queue of its own, so a run against a shared Redis never takes another
# run's tasks.
os.environ["TMC_QUEUE_NAME"] = f"tmc-test-{uuid.uuid4().hex[:12]}"
ensure_secrets(_home)
(_home / "static").mkdir()


class FastArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with the smallest costs, so fixtures create users quickly.

    The algorithm and the stored format stay those of production.
    """

    time_cost = 1
    memory_cost = 1024
    parallelism = 1


# Known to the tests only; test users exist in throw-away databases.
CommitCapture = Callable[..., AbstractContextManager[list[Callable[[], None]]]]

PASSWORD = "Corr3ct-Horse-Battery"  # noqa: S105  # nosec B105
SECOND_PASSWORD = "Sec0nd-Lock-Gate"  # noqa: S105  # nosec B105
SENDER = "AcmeAlerts"


@dataclass
class Tenant:
    organisation: Any
    controller: Any
    administrator: Any
    user: Any

    def client_for(self, user: Any, *, second_factor: bool = False) -> Client:
        """A browser signed in as ``user`` through the real log-in page.

        With ``second_factor`` the control areas are opened too.
        """
        return signed_in_client(user, second_factor=second_factor)


def signed_in_client(user: Any, *, second_factor: bool = False) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, "test log-in failed"
    if second_factor:
        response = client.post(
            "/second-password/", {"second_password": SECOND_PASSWORD}
        )
        assert response.status_code == 302, "test second password failed"
    return client


def make_tenant(name: str, *, credits: int = 100, trial: bool = False) -> Tenant:
    from tmc.accounts.services import account_create, credits_add
    from tmc.identity.models import Role
    from tmc.identity.services import second_password_set, user_create
    from tmc.messaging.models import SenderId

    slug = name.lower().replace(" ", "")
    organisation, controller = account_create(
        name=name,
        controller_username=f"{slug}-controller",
        controller_email=f"controller@{slug}.example",
        controller_password=PASSWORD,
        trial=trial,
    )
    administrator = user_create(
        organisation=organisation,
        username=f"{slug}-admin",
        email=f"admin@{slug}.example",
        password=PASSWORD,
        role=Role.ADMINISTRATOR,
    )
    user = user_create(
        organisation=organisation,
        username=f"{slug}-user",
        email=f"user@{slug}.example",
        password=PASSWORD,
        role=Role.USER,
    )
    SenderId.objects.create(
        organisation=organisation, value=SENDER, is_approved=True, is_default=True
    )
    for manager in (controller, administrator):
        second_password_set(
            user=manager, new_password=SECOND_PASSWORD, current=None, request=None
        )
    if credits:
        credits_add(organisation=organisation, amount=credits, reason="Test credit")
    return Tenant(organisation, controller, administrator, user)


STAFF_PASSWORD = "Staff-Pass-2468"  # noqa: S105  # nosec B105
STAFF_SECOND_PASSWORD = "Staff-Gate-1357"  # noqa: S105  # nosec B105


def make_staff(level: int, username: str | None = None) -> Any:
    """A staff member at ``level`` with both passwords set."""
    from tmc.staff.models import StaffMember
    from tmc.staff.services import staff_create, staff_second_password_set

    member = staff_create(
        actor=None,
        username=username or f"staff-level{level}",
        full_name=f"Level {level} Person",
        email=f"staff{level}@tmc.example",
        level=level,
        password=STAFF_PASSWORD,
    )
    staff_second_password_set(member=member, new=STAFF_SECOND_PASSWORD)
    return StaffMember.objects.get(pk=member.pk)


def staff_client_for(member: Any) -> Client:
    """A browser signed in to the staff console as ``member``."""
    client = Client()
    response = client.post(
        "/staff/login/", {"username": member.username, "password": STAFF_PASSWORD}
    )
    assert response.status_code == 302, "staff test log-in failed"
    response = client.post(
        "/staff/second-password/", {"second_password": STAFF_SECOND_PASSWORD}
    )
    assert response.status_code == 302, "staff second password failed"
    return client


@pytest.fixture
def staff(db: None) -> dict[int, Any]:
    """One staff member at each level, keyed by level."""
    return {level: make_staff(level) for level in (1, 2, 3, 4)}


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    return make_tenant("Acme")


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    return make_tenant("Globex")


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Any:
    """``with committed(execute=True):`` runs what commit would start.

    Tests run inside a transaction that is rolled back, so work queued with
    ``transaction.on_commit`` (the worker task after a send) needs this.
    """
    return django_capture_on_commit_callbacks


@pytest.fixture(autouse=True)
def _fresh_key_cache() -> Iterator[None]:
    from tmc.accounts.encryption import cache_clear

    cache_clear()
    yield
    cache_clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["tmc.testing.FastArgon2PasswordHasher"]


@pytest.fixture(autouse=True)
def _huey_immediate() -> Iterator[None]:
    """Run tasks in-process unless a test asks for the real worker."""
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = True
    yield
    HUEY.immediate = False


@pytest.fixture
def huey_worker(transactional_db: None) -> Iterator[None]:
    """Run a real Huey consumer (threads) on the configured storage.

    The storage is SQLite in TMC_HOME by default and Redis when TMC_REDIS_URL
    is set, so tasks cross the same queue they do in production.
    """
    from huey.contrib.djhuey import HUEY

    HUEY.immediate = False
    HUEY.flush()
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    consumer = HUEY.create_consumer(
        workers=2,
        worker_type="thread",
        periodic=False,
        check_worker_health=False,
        scheduler_interval=1,
        initial_delay=0.05,
        max_delay=0.2,
    )
    consumer.start()
    try:
        yield
    finally:
        consumer.stop(graceful=True)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        HUEY.flush()


def wait_until(
    condition: Callable[[], bool], *, timeout: float = 15.0, interval: float = 0.1
) -> None:
    """Poll ``condition`` until it holds, or fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")
