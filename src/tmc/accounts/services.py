"""Business rules for client accounts: creation and credits."""

from __future__ import annotations

import logging
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest

from tmc.accounts.models import CreditLedgerEntry, Organisation, Package
from tmc.audit.services import event_record
from tmc.identity.models import Role, User
from tmc.identity.services import user_create
from tmc.notifications.services import low_credit_check

logger = logging.getLogger(__name__)


TRIAL_CREDITS_REASON = "Trial credits"
# A message older than a week is rarely still welcome.
VALIDITY_HOURS_MAX = 168


class InsufficientCredit(Exception):
    """The organisation's balance does not cover the cost."""

    def __init__(self, *, needed: int, available: int) -> None:
        super().__init__(
            f"This needs {needed} credits and the account has {available}."
        )
        self.needed = needed
        self.available = available


def account_create(
    *,
    name: str,
    controller_username: str,
    controller_email: str,
    controller_password: str,
    package: Package | None = None,
    default_region: str = "GB",
    trial: bool | None = None,
) -> tuple[Organisation, User]:
    """Open a client account with its first Controller.

    Every organisation has a Controller from the start (policy: "each client
    must specify an account controller"), so the two are created together.

    An account opened without a package starts on the free trial
    (``trial`` None means exactly that): TMC_TRIAL_CREDITS credits, texts
    only to numbers it has verified, each with the trial notice. One opened
    with a package (by staff, ``tmc create-account --package``) has paid and
    is not on trial; ``trial=False`` opens one without a package off trial.
    """
    on_trial = package is None if trial is None else trial
    with transaction.atomic():
        organisation = Organisation.objects.create(
            name=name.strip(),
            package=package,
            default_region=default_region,
            is_trial=on_trial,
        )
        controller = user_create(
            organisation=organisation,
            username=controller_username,
            email=controller_email,
            password=controller_password,
            role=Role.CONTROLLER,
        )
        if package is not None:
            credits_add(
                organisation=organisation,
                amount=package.credits,
                kind=CreditLedgerEntry.Kind.PURCHASE,
                reason=f"Package {package.name}",
            )
        if on_trial and settings.TMC_TRIAL_CREDITS:
            credits_add(
                organisation=organisation,
                amount=settings.TMC_TRIAL_CREDITS,
                kind=CreditLedgerEntry.Kind.ADJUSTMENT,
                reason=TRIAL_CREDITS_REASON,
            )
    logger.info(
        "organisation created id=%s controller_id=%s trial=%s",
        organisation.pk,
        controller.pk,
        on_trial,
    )
    return organisation, controller


def trial_end(*, organisation: Organisation, cause: str) -> bool:
    """Take the organisation off the free trial; False if it was not on it.

    Only ever from on to off: nothing puts a paying organisation back on
    trial. ``cause`` names what ended it, for the log.
    """
    # Conditional, so two causes at once (a purchase and a package change)
    # log the end once.
    ended = Organisation.objects.filter(pk=organisation.pk, is_trial=True).update(
        is_trial=False
    )
    organisation.is_trial = False
    if ended:
        logger.info("trial ended organisation_id=%s cause=%s", organisation.pk, cause)
    return bool(ended)


def credits_add(
    *,
    organisation: Organisation,
    amount: int,
    kind: str = CreditLedgerEntry.Kind.ADJUSTMENT,
    reason: str,
) -> CreditLedgerEntry:
    """Add credits with a ledger entry; a purchase ends the free trial."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    with transaction.atomic():
        # The UPDATE adds to whatever the balance is at commit time, so
        # concurrent additions and debits never overwrite each other.
        Organisation.objects.filter(pk=organisation.pk).update(
            credit_balance=F("credit_balance") + amount
        )
        organisation.refresh_from_db(fields=["credit_balance"])
        entry = CreditLedgerEntry.objects.create(
            organisation=organisation,
            kind=kind,
            amount=amount,
            balance_after=organisation.credit_balance,
            reason=reason,
        )
        if kind == CreditLedgerEntry.Kind.PURCHASE:
            trial_end(organisation=organisation, cause="purchase")
        low_credit_check(organisation)
        return entry


def credits_debit(
    *,
    organisation: Organisation,
    amount: int,
    reason: str,
    kind: str = CreditLedgerEntry.Kind.MESSAGE,
) -> CreditLedgerEntry:
    """Spend ``amount`` credits, or raise InsufficientCredit and spend none.

    Call inside the transaction that creates what the credits pay for, so a
    failure after the debit rolls both back.
    """
    if amount <= 0:
        raise ValueError("amount must be positive")
    # A conditional UPDATE rather than read-check-write: two sends racing for
    # the last credits cannot both pass the check, because the database
    # re-evaluates the WHERE clause against the row it locks.
    debited = Organisation.objects.filter(
        pk=organisation.pk, credit_balance__gte=amount
    ).update(credit_balance=F("credit_balance") - amount)
    organisation.refresh_from_db(fields=["credit_balance"])
    if not debited:
        raise InsufficientCredit(needed=amount, available=organisation.credit_balance)
    entry = CreditLedgerEntry.objects.create(
        organisation=organisation,
        kind=kind,
        amount=-amount,
        balance_after=organisation.credit_balance,
        reason=reason,
    )
    low_credit_check(organisation)
    return entry


def _sending_settings(organisation: Organisation) -> dict[str, object]:
    quiet = organisation.quiet_hours
    return {
        "time_zone": organisation.time_zone,
        "quiet": quiet.describe() if quiet else None,
        "validity_hours": organisation.message_validity_hours,
    }


def sending_settings_set(
    *,
    actor: User,
    time_zone: str,
    quiet_start: time | None,
    quiet_end: time | None,
    validity_hours: int | None,
    request: HttpRequest | None = None,
) -> None:
    """Set the organisation's clock, quiet hours and validity period.

    Controllers only. ``validity_hours`` None follows the platform's
    TMC_MESSAGE_VALIDITY_HOURS. Existing schedules keep their next run until
    it comes; a run then falling in the new quiet hours moves to their end.
    Messages already accepted keep the expiry they were given.
    """
    if actor.role != Role.CONTROLLER:
        raise PermissionDenied("Controllers only.")
    errors: dict[str, str] = {}
    try:
        if time_zone not in available_timezones():
            raise ZoneInfoNotFoundError(time_zone)
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = "Choose a time zone from the list."
    if (quiet_start is None) != (quiet_end is None):
        errors["quiet_end"] = "Give both ends of the quiet hours, or neither."
    elif quiet_start is not None and quiet_start == quiet_end:
        errors["quiet_end"] = "The quiet hours must end at another time."
    if validity_hours is not None and not 1 <= validity_hours <= VALIDITY_HOURS_MAX:
        errors["validity_hours"] = (
            f"Give a number of hours from 1 to {VALIDITY_HOURS_MAX}, or leave it "
            "empty for the platform's default."
        )
    if errors:
        raise ValidationError(errors)

    organisation = actor.organisation
    with transaction.atomic():
        # Locked so that two Controllers saving at once log a true "before".
        locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
        before = _sending_settings(locked)
        Organisation.objects.filter(pk=organisation.pk).update(
            time_zone=time_zone,
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            message_validity_hours=validity_hours,
        )
        organisation.refresh_from_db(
            fields=["time_zone", "quiet_start", "quiet_end", "message_validity_hours"]
        )
        after = _sending_settings(organisation)
        if before != after:
            event_record(
                action="settings.sending_changed",
                actor=actor,
                target=organisation,
                details={
                    "changed": sorted(k for k in after if before[k] != after[k]),
                    "before": before,
                    "after": after,
                },
                request=request,
            )
    logger.info("sending settings changed organisation_id=%s", organisation.pk)


def organisation_named(text: str) -> Organisation | None:
    """The organisation an operator named on the command line: id or name."""
    return Organisation.objects.filter(
        Q(name=text) | Q(pk=int(text) if text.isdigit() else None)
    ).first()
