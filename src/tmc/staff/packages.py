"""Packages and their prices, set by accountants (level 2) and above.

Each change is an activity-log event on the platform's chain, naming the
package and what changed. Prices apply to texts accepted after the change;
credits already reserved are not repriced.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from tmc.accounts.models import Package, PackagePrice
from tmc.accounts.pricing import region_names
from tmc.staff.levels import Capability
from tmc.staff.models import StaffMember
from tmc.staff.services import _record, require

logger = logging.getLogger(__name__)

PRICE_MAX = 1000


def _price_problem(value: int, *, allow_zero: bool = False) -> str:
    low = 0 if allow_zero else 1
    if not low <= value <= PRICE_MAX:
        return f"Give a whole number from {low} to {PRICE_MAX}."
    return ""


def staff_package_save(
    *,
    actor: StaffMember,
    package: Package | None,
    name: str,
    credits: int,
    credits_per_part: int,
    monthly_allowance: int,
    request: HttpRequest | None = None,
) -> Package:
    """Create a package (``package`` None) or change one; raise ValidationError."""
    require(actor, Capability.MANAGE_PACKAGES)
    errors: dict[str, str] = {}
    name = " ".join(name.split())
    if not name:
        errors["name"] = "Name the package."
    elif (
        Package.objects.filter(name__iexact=name)
        .exclude(pk=package.pk if package else 0)
        .exists()
    ):
        errors["name"] = "There is a package with this name already."
    if credits < 0:
        errors["credits"] = "Credits cannot be negative."
    if problem := _price_problem(credits_per_part):
        errors["credits_per_part"] = problem
    if monthly_allowance < 0:
        errors["monthly_allowance"] = "The allowance cannot be negative."
    if errors:
        raise ValidationError(errors)

    values = {
        "name": name,
        "credits": credits,
        "credits_per_part": credits_per_part,
        "monthly_allowance": monthly_allowance,
    }
    try:
        with transaction.atomic():
            if package is None:
                saved = Package.objects.create(**values)
                changed = sorted(values)
            else:
                changed = sorted(
                    k for k, v in values.items() if getattr(package, k) != v
                )
                for key, value in values.items():
                    setattr(package, key, value)
                package.save()
                saved = package
            _record(
                "package.created" if package is None else "package.changed",
                actor,
                target=saved,
                request=request,
                details={"package": saved.pk, "changed": changed, **values},
            )
    except IntegrityError as exc:
        raise ValidationError(
            {"name": "There is a package with this name already."}
        ) from exc
    logger.info("package saved id=%s staff_id=%s", saved.pk, actor.pk)
    return saved


def staff_package_price_set(
    *,
    actor: StaffMember,
    package: Package,
    country_code: str,
    credits_per_part: int,
    request: HttpRequest | None = None,
) -> PackagePrice:
    """Set what a part to one country costs on ``package``."""
    require(actor, Capability.MANAGE_PACKAGES)
    code = country_code.strip().removeprefix("+")
    errors: dict[str, str] = {}
    if not region_names(code):
        errors["country_code"] = (
            "Give a country calling code, such as 44 for the United Kingdom."
        )
    if problem := _price_problem(credits_per_part):
        errors["credits_per_part"] = problem
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        price, _ = PackagePrice.objects.update_or_create(
            package=package,
            country_code=code,
            defaults={"credits_per_part": credits_per_part},
        )
        _record(
            "package.price_set",
            actor,
            target=package,
            request=request,
            details={
                "package": package.pk,
                "country_code": code,
                "credits_per_part": credits_per_part,
            },
        )
    return price


def staff_package_price_delete(
    *,
    actor: StaffMember,
    package: Package,
    country_code: str,
    request: HttpRequest | None = None,
) -> bool:
    """Remove a country's price: it then costs the package's default."""
    require(actor, Capability.MANAGE_PACKAGES)
    with transaction.atomic():
        deleted, _ = PackagePrice.objects.filter(
            package=package, country_code=country_code
        ).delete()
        if deleted:
            _record(
                "package.price_deleted",
                actor,
                target=package,
                request=request,
                details={"package": package.pk, "country_code": country_code},
            )
    return bool(deleted)
