"""Time-based one-time passwords (RFC 6238) as a second factor.

The shared secret is stored sealed (AES-256-GCM, a key derived from the
master key, bound to the user's id), and each accepted time step is
remembered so a code seen over someone's shoulder cannot be used twice.
Rotating the master key re-seals the secrets (``totp_secrets_reseal``).
"""

from __future__ import annotations

import hmac
import logging
import time

import pyotp
import segno
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tmc.identity.models import User
from tmc.lib.keys import master_open, master_seal

logger = logging.getLogger(__name__)

ISSUER = "TMC"
STEP_SECONDS = 30
# One step either side forgives a phone clock that is up to 30 s off.
DRIFT_STEPS = 1


PURPOSE = "totp-secret"


def _owner(user: User) -> str:
    return f"identity.user:{user.pk}"


def _sealed(user: User, secret: str) -> str:
    return master_seal(settings.TMC_HOME, PURPOSE, secret, owner=_owner(user))


def _secret(user: User) -> str:
    # A retired master key still opens it, until the rotation re-seals it.
    return master_open(
        settings.TMC_HOME, PURPOSE, user.totp_secret, owner=_owner(user)
    )[0]


def totp_secrets_reseal() -> int:
    """Re-seal every TOTP secret under the current master key; return how many.

    ``master_key_rotate`` calls this before it removes the retired master
    keys. A secret that an enrolment seals with the old key after this pass
    has run (a window of microseconds) would be lost with the old key; the
    user would have to enrol again.
    """
    from tmc.accounts.encryption import master_sealed_reseal

    resealed = master_sealed_reseal(
        User.objects.all(), field="totp_secret", purpose=PURPOSE, owner=_owner
    )
    logger.info("totp secrets re-sealed count=%s", resealed)
    return resealed


def totp_enrolment_start(user: User) -> str:
    """Give the user a secret if they have none; return its otpauth:// URI.

    The secret stays the same until confirmed, so reloading the page or a
    mistyped code does not invalidate what the phone has already scanned.
    """
    if not user.totp_secret:
        secret = pyotp.random_base32()
        user.totp_secret = _sealed(user, secret)
        user.totp_confirmed_at = None
        user.totp_last_step = None
        user.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    return pyotp.TOTP(_secret(user)).provisioning_uri(
        name=user.username, issuer_name=ISSUER
    )


def totp_secret_for_display(user: User) -> str:
    secret = _secret(user)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def qr_data_uri(uri: str) -> str:
    return str(segno.make(uri, error="m").svg_data_uri(scale=4))


def totp_check(user: User, code: str, *, now: float | None = None) -> bool:
    """True if ``code`` is valid now and newer than the last one accepted.

    Call with the user's row locked (the caller's select_for_update), so two
    requests cannot both accept the same step.
    """
    if not user.totp_secret:
        return False
    digits = "".join(ch for ch in code if ch.isdigit())
    if len(digits) != 6:
        return False
    totp = pyotp.TOTP(_secret(user))
    moment = time.time() if now is None else now
    current = int(moment // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if user.totp_last_step is not None and step <= user.totp_last_step:
            continue
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), digits):
            user.totp_last_step = step
            return True
    return False


def totp_enrolment_confirm(user: User, code: str) -> bool:
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not totp_check(locked, code):
            return False
        locked.totp_confirmed_at = timezone.now()
        locked.save(update_fields=["totp_confirmed_at", "totp_last_step"])
    user.totp_confirmed_at = locked.totp_confirmed_at
    user.totp_last_step = locked.totp_last_step
    return True
