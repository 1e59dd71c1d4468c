"""Operational tasks: seeding the demo account."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from tmc.accounts.models import Organisation, Package
from tmc.accounts.services import account_create
from tmc.boomerang.models import VirtualNumber
from tmc.boomerang.services import numbers_add
from tmc.identity.models import User
from tmc.messaging.models import SenderId

logger = logging.getLogger(__name__)

DEMO_ORGANISATION = "Demo Ltd"
DEMO_USERNAME = "demo"
DEMO_SENDER = "TMCDemo"
# The demo's shared reply numbers; only the simulator ever carries them.
DEMO_POOL = ("+447400900001", "+447400900002", "+447400900003")
# A file name, not a password.
DEMO_PASSWORD_FILE = "demo-password"  # noqa: S105  # nosec B105
DEMO_PACKAGES = [("Trial", 50), ("Business 1000", 1000), ("Business 10000", 10000)]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    organisation: Organisation


def _demo_password(home: Path) -> str:
    path = home / DEMO_PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="ascii").strip()
    # Random, so a demo left running on a shared machine has no known password.
    password = f"Demo{secrets.token_hex(4)}{secrets.randbelow(90) + 10}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(password + "\n")
    return password


def demo_seed(*, home: Path) -> DemoLogin:
    """Create the demo organisation, its Controller and sender once."""
    password = _demo_password(home)
    with transaction.atomic():
        for name, credits in DEMO_PACKAGES:
            Package.objects.get_or_create(name=name, defaults={"credits": credits})
        existing = User.objects.filter(username__iexact=DEMO_USERNAME).first()
        if existing is not None:
            # The password file may be newer than the database (deleted and
            # made again): the login printed must be the one that works.
            if not existing.check_password(password):
                existing.set_password(password)
                existing.save(update_fields=["password"])
                logger.info("demo password reset to the one in TMC_HOME")
            return DemoLogin(DEMO_USERNAME, password, existing.organisation)

        organisation, _ = account_create(
            name=DEMO_ORGANISATION,
            controller_username=DEMO_USERNAME,
            controller_email="demo@example.com",
            controller_password=password,
            package=Package.objects.get(name="Business 1000"),
        )
        SenderId.objects.create(
            organisation=organisation,
            value=DEMO_SENDER,
            is_approved=True,
            is_default=True,
        )
        # Reply numbers for questions, so Boomerang works from the start.
        if not VirtualNumber.objects.exists():
            numbers_add(numbers=list(DEMO_POOL))
    logger.info("demo organisation seeded id=%s", organisation.pk)
    return DemoLogin(DEMO_USERNAME, password, organisation)
