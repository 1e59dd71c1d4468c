"""Client organisations, the packages they buy and their credit ledger."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Self, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import Value
from django.db.models.functions import Coalesce

from tmc.lib.recurrence import QuietHours

if TYPE_CHECKING:
    from tmc.identity.models import User


class Package(models.Model):
    """A product a client buys: a block of message credits and its prices.

    A part to a destination costs the price of its country
    (``PackagePrice``), else ``credits_per_part``. ``monthly_allowance``
    parts a calendar month are free and are used before any credit.
    """

    name = models.CharField(max_length=80, unique=True)
    credits = models.PositiveIntegerField(help_text="Credits added on purchase.")
    credits_per_part = models.PositiveIntegerField(
        default=1, help_text="Credits per part to countries without a price."
    )
    monthly_allowance = models.PositiveIntegerField(
        default=0, help_text="Parts free each calendar month, before credits."
    )

    class Meta:
        ordering = ["credits"]

    def __str__(self) -> str:
        return self.name


class PackagePrice(models.Model):
    """What a part to one destination country costs on a package."""

    package = models.ForeignKey(
        Package, on_delete=models.CASCADE, related_name="prices"
    )
    # The ITU country calling code, digits only ("44", "33", "1"): these
    # form a prefix code, so a number's price is found from its first digits.
    country_code = models.CharField(max_length=3)
    credits_per_part = models.PositiveIntegerField()

    class Meta:
        ordering = ["country_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["package", "country_code"],
                name="package_price_one_per_country",
            ),
            models.CheckConstraint(
                condition=models.Q(credits_per_part__gte=1),
                name="package_price_at_least_one_credit",
            ),
        ]

    def __str__(self) -> str:
        return f"+{self.country_code}: {self.credits_per_part} per part"


def _default_time_zone() -> str:
    return str(settings.TIME_ZONE or "Europe/London")


class Organisation(models.Model):
    """A client account: the tenant every piece of client data belongs to."""

    name = models.CharField(max_length=120)
    package = models.ForeignKey(
        Package, null=True, blank=True, on_delete=models.PROTECT
    )
    # Changed only by credits_add / credits_debit with conditional UPDATEs.
    credit_balance = models.IntegerField(default=0)
    default_region = models.CharField(
        max_length=2,
        default="GB",
        help_text="Region used for numbers written without a country code.",
    )
    time_zone = models.CharField(
        max_length=64,
        default=_default_time_zone,
        help_text="IANA name, e.g. Europe/London: scheduled sends follow its clock.",
    )
    # Local times; a start later than the end spans midnight. Both or neither.
    quiet_start = models.TimeField(null=True, blank=True)
    quiet_end = models.TimeField(null=True, blank=True)
    # Hours a message may wait for a gateway before it expires and is
    # refunded; None follows TMC_MESSAGE_VALIDITY_HOURS.
    message_validity_hours = models.PositiveSmallIntegerField(null=True, blank=True)
    # Parts of the package's monthly allowance used in ``allowance_month``
    # (its first day); a new month starts from nothing. Changed only by
    # accounts.pricing.allowance_take/_give_back under the row's lock.
    allowance_month = models.DateField(null=True, blank=True)
    allowance_used = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    # On the free trial: it texts only numbers it has verified, each text
    # carrying a notice. Ended by tmc.messaging.trial.trial_end.
    is_trial = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(quiet_start__isnull=True, quiet_end__isnull=True)
                | models.Q(quiet_start__isnull=False, quiet_end__isnull=False),
                name="organisation_quiet_hours_both_or_neither",
            ),
            models.CheckConstraint(
                condition=models.Q(credit_balance__gte=0),
                name="organisation_credit_balance_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def quiet_hours(self) -> QuietHours | None:
        if self.quiet_start is None or self.quiet_end is None:
            return None
        return QuietHours(self.quiet_start, self.quiet_end)

    @property
    def validity_hours(self) -> int:
        """The validity period in force: the organisation's, else the platform's."""
        if self.message_validity_hours is not None:
            return self.message_validity_hours
        return int(settings.TMC_MESSAGE_VALIDITY_HOURS)

    def quiet_release(self, at: datetime) -> datetime | None:
        """When a send wanted at ``at`` may go, if in quiet hours; else None."""
        quiet = self.quiet_hours
        return quiet.release(at, self.zone) if quiet is not None else None


class CreditLedgerEntry(models.Model):
    """One change to an organisation's credit balance, with its reason."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Package purchase"
        ADJUSTMENT = "adjustment", "Adjustment"
        MESSAGE = "message", "Message sent"
        REFUND = "refund", "Refund"

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="ledger"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = models.IntegerField(help_text="Positive adds credit, negative spends.")
    balance_after = models.IntegerField()
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.amount:+d} credits: {self.reason}"


_Owned = TypeVar("_Owned", bound=models.Model)


class OrganisationScopedQuerySet(models.QuerySet[_Owned]):
    """The one way client data is read: always within one organisation."""

    def for_organisation(self, organisation: Organisation) -> Self:
        return self.filter(organisation=organisation)

    def for_user(self, user: User) -> Self:
        return self.for_organisation(user.organisation)


class OrganisationOwned(models.Model):
    """Base for every model that holds one organisation's data.

    Views never call ``objects.get`` on these; they go through
    ``tmc.accounts.scoping.get_for_user_or_404`` or ``objects.for_user``.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        abstract = True


class DataKey(models.Model):
    """One of an organisation's keys, stored only wrapped by the master key.

    ``purpose`` "data" keys encrypt confidential columns; the newest
    unretired one is current. A rotation (``tmc.accounts.keyrotation``)
    retires the others, which still open values until no row uses them and
    are then destroyed.
    The "index" key computes blind indexes for lookups and is never rotated
    with the data keys, so lookups keep working during a rotation.
    Destroying the keys (wrapped value emptied) makes the organisation's
    confidential data unreadable: erasure on request.
    """

    class Purpose(models.TextChoices):
        DATA = "data", "Data encryption"
        INDEX = "index", "Blind index"

    # None: the platform's own keys, for data that belongs to no organisation
    # yet (an inbound text nobody expected) and for platform-wide lookups.
    organisation = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="data_keys",
    )
    key_id = models.CharField(max_length=24, unique=True)
    purpose = models.CharField(max_length=8, choices=Purpose.choices)
    wrapped = models.TextField()
    master_key_id = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    destroyed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One live index key per owner, the platform included (hence the
            # coalesce: NULLs never collide in a unique index). Two processes
            # making the first one at once would otherwise each compute
            # their own blind indexes, and lookups would miss.
            models.UniqueConstraint(
                Coalesce("organisation", Value(0)),
                "purpose",
                condition=models.Q(purpose="index", destroyed_at__isnull=True),
                name="accounts_one_live_index_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.purpose} key {self.key_id} of {self.organisation_id}"
