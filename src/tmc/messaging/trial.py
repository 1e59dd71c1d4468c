"""The free trial: numbers a trial organisation may text, and the notice.

An organisation opened without a package (``account_create``) is on trial
until it buys credits or staff give it a package (``trial_end``). Meanwhile
it texts only numbers it has verified: a six-digit code is texted to the
number, free of charge, and entering it proves the number is the
organisation's to text. Every send path asks ``unverified_numbers`` (one-to-one
through ``message_compose``, many through ``campaign_preview``), and every
text carries TMC_TRIAL_NOTICE, counted in its parts.

Codes are kept only as a keyed hash. Five wrong codes lock the number's
verification for good: sending a new code does not reset the count, or the
lock would be no lock. Such a number can still be verified after the trial
ends, which makes verification unnecessary anyway.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from tmc.accounts import encryption
from tmc.accounts.models import Organisation
from tmc.audit.services import event_record
from tmc.contacts.services import opted_out
from tmc.identity.models import User
from tmc.lib.phone import InvalidNumber, normalise_mobile
from tmc.lib.segments import count_segments
from tmc.messaging.models import VerifiedNumber

logger = logging.getLogger(__name__)

CODE_DIGITS = 6
CODE_VALID_FOR = timedelta(minutes=15)
MAX_ATTEMPTS = 5
NOT_VERIFIED = (
    "On the free trial you can text only numbers you have verified. Verify "
    "this number under Verified numbers first."
)
NOT_VERIFIED_REASON = "not verified (trial)"
LOCKED = "Too many wrong codes: this number can no longer be verified on the trial."
WRONG_CODE = "That is not the code we sent."
EXPIRED = "The code has expired. Send a new one."
OPTED_OUT = "This number has opted out of your texts (it replied STOP)."
NO_CODE = "No code has been sent to this number. Send one."
ALREADY = "This number is verified already."
RESEND_AFTER = timedelta(minutes=1)
TOO_SOON = "A code was sent a moment ago. Wait a minute before asking again."


def trial_notice(organisation: Organisation) -> str:
    """What is appended to each of the organisation's texts: "" off trial."""
    return str(settings.TMC_TRIAL_NOTICE) if organisation.is_trial else ""


def unverified_numbers(organisation: Organisation, numbers: Iterable[str]) -> set[str]:
    """Which of these E.164 numbers a trial organisation may not text yet.

    Empty for an organisation off trial. One query, by blind index.
    """
    if not organisation.is_trial:
        return set()
    indexes = {encryption.index(organisation.pk, n): n for n in numbers}
    if not indexes:
        return set()
    verified = set(
        VerifiedNumber.objects.for_organisation(organisation)
        .filter(number_index__in=list(indexes), verified_at__isnull=False)
        .values_list("number_index", flat=True)
    )
    return {number for index, number in indexes.items() if index not in verified}


def _code_hash(verified: VerifiedNumber, code: str) -> str:
    # Keyed with the secret key and bound to the row: a copy of the table
    # alone does not let anyone try the million codes offline.
    return salted_hmac(
        "tmc.messaging.trial.code", f"{verified.uid}:{code}", algorithm="sha256"
    ).hexdigest()


def verified_number_add(
    *, user: User, number: str, request: HttpRequest | None = None
) -> VerifiedNumber:
    """Text a fresh code to ``number`` for the user's organisation to enter.

    Raises ValidationError keyed by ``number``. Sending again (after a
    minute) replaces the code and restarts its 15 minutes; the count of
    wrong codes stays. A number that replied STOP is not texted.
    """
    organisation = user.organisation
    try:
        e164 = normalise_mobile(number, organisation.default_region)
    except InvalidNumber as exc:
        raise ValidationError({"number": str(exc)}) from exc
    if opted_out(organisation, e164):
        raise ValidationError({"number": OPTED_OUT})

    index = encryption.index(organisation.pk, e164)
    verified = (
        VerifiedNumber.objects.for_organisation(organisation)
        .filter(number_index=index)
        .first()
    )
    if verified is not None and verified.is_verified:
        raise ValidationError({"number": ALREADY})
    if verified is not None and verified.attempts >= MAX_ATTEMPTS:
        raise ValidationError({"number": LOCKED})
    # The platform pays for codes: one a minute per number at most.
    sent_at = verified.code_sent_at if verified is not None else None
    if sent_at is not None and sent_at + RESEND_AFTER > timezone.now():
        raise ValidationError({"number": TOO_SOON})

    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    try:
        with transaction.atomic():
            if verified is None:
                verified = VerifiedNumber(organisation=organisation)
                verified.seal(number=e164)
            verified.code_hash = _code_hash(verified, code)
            verified.code_sent_at = timezone.now()
            verified.save()
            _code_send(user=user, recipient=e164, code=code, request=request)
    except IntegrityError as exc:
        # The same number added twice at once: the constraint decides.
        raise ValidationError({"number": "Try again in a moment."}) from exc
    logger.info(
        "verification code sent verified_number_id=%s organisation_id=%s",
        verified.pk,
        organisation.pk,
    )
    return verified


def _code_send(
    *, user: User, recipient: str, code: str, request: HttpRequest | None
) -> None:
    """Queue the code text through the normal path, charging nothing.

    It goes from the organisation's default sender, without the trial check
    (the number is not verified yet: that is the point) and without the
    notice.
    """
    from tmc.messaging.services import ComposedMessage, _resolve_sender, message_create

    sender = _resolve_sender(user, "")
    if sender is None:
        raise ValidationError({"number": "This account has no approved sender yet."})
    body = (
        f"Your TMC verification code is {code}. It expires in "
        f"{CODE_VALID_FOR.seconds // 60} minutes."
    )
    message_create(
        user=user,
        composed=ComposedMessage(
            recipient=recipient,
            sender=sender.value,
            body=body,
            segments=count_segments(body),
        ),
        request=request,
        details={"verification": True},
        charge=False,
    )


def verified_number_confirm(
    *,
    user: User,
    verified: VerifiedNumber,
    code: str,
    request: HttpRequest | None = None,
) -> VerifiedNumber:
    """Verify the number if ``code`` is the one sent; raise ValidationError.

    A wrong code counts towards the lock even when the code has expired.
    """
    assert verified.organisation_id == user.organisation_id
    if verified.is_verified:
        raise ValidationError({"code": ALREADY})
    if verified.attempts >= MAX_ATTEMPTS:
        raise ValidationError({"code": LOCKED})
    if not verified.code_hash or verified.code_sent_at is None:
        raise ValidationError({"code": NO_CODE})

    right = constant_time_compare(
        verified.code_hash, _code_hash(verified, code.strip())
    )
    if not right:
        # Counted with a conditional UPDATE: two wrong guesses posted at once
        # both count, and none is accepted past the fifth.
        VerifiedNumber.objects.filter(pk=verified.pk, attempts__lt=MAX_ATTEMPTS).update(
            attempts=F("attempts") + 1
        )
        verified.refresh_from_db(fields=["attempts"])
        logger.info(
            "verification code wrong verified_number_id=%s attempts=%s",
            verified.pk,
            verified.attempts,
        )
        raise ValidationError(
            {"code": LOCKED if verified.attempts >= MAX_ATTEMPTS else WRONG_CODE}
        )
    if verified.code_sent_at + CODE_VALID_FOR <= timezone.now():
        raise ValidationError({"code": EXPIRED})

    with transaction.atomic():
        # Only an unlocked, unverified row: a guess racing the fifth wrong
        # one cannot verify a number that has just locked.
        now = timezone.now()
        done = VerifiedNumber.objects.filter(
            pk=verified.pk, attempts__lt=MAX_ATTEMPTS, verified_at__isnull=True
        ).update(verified_at=now, code_hash="")
        if not done:
            raise ValidationError({"code": LOCKED})
        event_record(
            action="trial.number_verified",
            actor=user,
            target=verified,
            details={"verified_number": verified.pk},
            request=request,
        )
    verified.verified_at, verified.code_hash = now, ""
    logger.info("number verified verified_number_id=%s", verified.pk)
    return verified
