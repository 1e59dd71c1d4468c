"""What a text costs: the package's price per destination and its allowance.

A part to a number costs the credits its package asks for the number's
country (``PackagePrice``, found by the country calling code at the start
of the E.164 number), else the package's ``credits_per_part``; with no
package (the free trial) one credit. The package's monthly allowance gives
that many parts free each calendar month of the organisation's clock, used
before any credit: ``charge_plan`` gives each message its free parts and
its credits, ``allowance_take`` records the parts used and
``allowance_give_back`` returns those of a message refunded the same month.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import phonenumbers
from django.db.models import Case, F, When
from django.utils import timezone

from tmc.accounts.models import Organisation

# ITU country calling codes are one to three digits.
CODE_LENGTHS = (1, 2, 3)


@dataclass(frozen=True)
class PriceList:
    default: int = 1
    by_code: Mapping[str, int] = field(default_factory=dict)
    allowance: int = 0

    def per_part(self, e164: str) -> int:
        """Credits per part to ``e164`` (a normalised +number)."""
        if self.by_code:
            digits = e164.removeprefix("+")
            for length in CODE_LENGTHS:
                price = self.by_code.get(digits[:length])
                if price is not None:
                    return price
        return self.default


@dataclass(frozen=True)
class Charge:
    """Per message: the free parts it takes and the credits it costs."""

    credits: tuple[int, ...]
    free_parts: tuple[int, ...]

    @property
    def total_credits(self) -> int:
        return sum(self.credits)

    @property
    def total_free(self) -> int:
        return sum(self.free_parts)


def price_list(organisation: Organisation) -> PriceList:
    """The organisation's prices now: two small queries, or none on trial."""
    package_id = organisation.package_id
    if package_id is None:
        return PriceList()
    from tmc.accounts.models import Package

    package = Package.objects.filter(pk=package_id).first()
    if package is None:
        return PriceList()
    return PriceList(
        default=package.credits_per_part,
        by_code=dict(package.prices.values_list("country_code", "credits_per_part")),
        allowance=package.monthly_allowance,
    )


def allowance_month(organisation: Organisation, now: datetime | None = None) -> date:
    """The first day of the month now is in, by the organisation's clock."""
    local = timezone.localtime(now or timezone.now(), organisation.zone)
    return local.date().replace(day=1)


def allowance_left(
    organisation: Organisation, prices: PriceList, now: datetime | None = None
) -> int:
    """Free parts left this month, from the organisation row as loaded."""
    if not prices.allowance:
        return 0
    used = (
        organisation.allowance_used
        if organisation.allowance_month == allowance_month(organisation, now)
        else 0
    )
    return max(prices.allowance - used, 0)


def charge_plan(
    prices: PriceList, recipients: Sequence[str], parts: int, free: int
) -> Charge:
    """Share ``free`` parts among the messages in order; price the rest.

    Built from repeated runs rather than a step per message where it can be:
    a campaign may have 100,000 recipients, and this runs at its preview
    and again at its acceptance.
    """
    count = len(recipients)
    whole, rest = divmod(min(max(free, 0), parts * count), parts) if parts else (0, 0)
    free_parts = [parts] * whole + ([rest] if rest else [])
    free_parts += [0] * (count - len(free_parts))
    if not prices.by_code:
        paid = prices.default
        credits = [0] * whole + ([(parts - rest) * paid] if rest else [])
        credits += [parts * paid] * (count - len(credits))
    else:
        # Numbers of one country share their first digits: look each
        # three-digit start up once.
        price_of: dict[str, int] = {}
        credits = []
        for number, taken in zip(recipients, free_parts, strict=True):
            start = number[:4]
            price = price_of.get(start)
            if price is None:
                price = price_of[start] = prices.per_part(number)
            credits.append((parts - taken) * price)
    return Charge(credits=tuple(credits), free_parts=tuple(free_parts))


def allowance_lock(organisation: Organisation) -> Organisation:
    """Lock the organisation's row and read its allowance use afresh.

    Call inside the transaction that takes the free parts: two sends at
    once then take turns, and the second sees what the first used, so the
    allowance is never used twice over.
    """
    return Organisation.objects.select_for_update().get(pk=organisation.pk)


def allowance_take(
    organisation: Organisation, parts: int, now: datetime | None = None
) -> None:
    """Record ``parts`` of this month's allowance as used (row locked)."""
    if parts <= 0:
        return
    month = allowance_month(organisation, now)
    Organisation.objects.filter(pk=organisation.pk).update(
        allowance_used=Case(
            When(allowance_month=month, then=F("allowance_used") + parts),
            default=parts,
        ),
        allowance_month=month,
    )


def allowance_give_back(
    organisation: Organisation, parts: int, taken_at: datetime
) -> int:
    """Return free parts of a refunded message taken this same month.

    Parts taken in an earlier month are not returned: that month's allowance
    has lapsed. One conditional UPDATE, so a give-back never takes the count
    below zero. Returns the parts given back.
    """
    if parts <= 0:
        return 0
    month = allowance_month(organisation, taken_at)
    if month != allowance_month(organisation):
        return 0
    returned = Organisation.objects.filter(
        pk=organisation.pk, allowance_month=month, allowance_used__gte=parts
    ).update(allowance_used=F("allowance_used") - parts)
    return parts if returned else 0


def region_names(code: str) -> list[str]:
    """The ISO regions dialled with country calling code ``code``; [] if none."""
    if not code.isdigit() or not 1 <= len(code) <= 3:
        return []
    regions = phonenumbers.region_codes_for_country_code(int(code))
    return [r for r in regions if r != phonenumbers.UNKNOWN_REGION]
