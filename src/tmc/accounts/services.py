"""Business rules for client accounts: creation and credits."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F

from tmc.accounts.models import CreditLedgerEntry, Organisation, Package
from tmc.identity.models import Role, User
from tmc.identity.services import user_create
from tmc.notifications.services import low_credit_check

logger = logging.getLogger(__name__)


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
) -> tuple[Organisation, User]:
    """Open a client account with its first Controller.

    Every organisation has a Controller from the start (policy: "each client
    must specify an account controller"), so the two are created together.
    """
    with transaction.atomic():
        organisation = Organisation.objects.create(
            name=name.strip(), package=package, default_region=default_region
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
    logger.info(
        "organisation created id=%s controller_id=%s", organisation.pk, controller.pk
    )
    return organisation, controller


def credits_add(
    *,
    organisation: Organisation,
    amount: int,
    kind: str = CreditLedgerEntry.Kind.ADJUSTMENT,
    reason: str,
) -> CreditLedgerEntry:
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
