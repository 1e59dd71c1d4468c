"""Routes, and the health of the gateways they name.

``route_gateways`` answers "which gateways may carry this number, in which
order"; ``gateways_down`` which of them to skip for now. A gateway that
fails is skipped by every worker until its back-off ends, which doubles
with each failure in a row and resets on the first success.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models.functions import Length
from django.utils import timezone

from tmc.gateways.registry import gateway_named
from tmc.routing.models import GatewayHealth, Route

logger = logging.getLogger(__name__)


def route_gateways(*, number: str) -> list[str]:
    """The gateways for an E.164 number, most preferred first.

    The route with the longest matching prefix wins; with no route at all
    (a fresh installation) the configured TMC_GATEWAY carries everything.
    """
    prefixes = [number[:length] for length in range(len(number) + 1)]
    route = (
        Route.objects.filter(prefix__in=prefixes)
        .order_by(Length("prefix").desc())
        .only("gateways")
        .first()
    )
    if route is None:
        return [settings.TMC_GATEWAY]
    return list(route.gateways)


def routes_gateways(*, numbers: Iterable[str]) -> dict[str, list[str]]:
    """``route_gateways`` for many numbers at once, with one query.

    Routes are few (one per destination prefix), so all are read and each
    number's longest prefix is found here.
    """
    routes = dict(Route.objects.values_list("prefix", "gateways"))
    default = [settings.TMC_GATEWAY]
    found: dict[str, list[str]] = {}
    for number in numbers:
        found[number] = default
        for length in range(len(number), -1, -1):
            gateways = routes.get(number[:length])
            if gateways is not None:
                found[number] = list(gateways)
                break
    return found


def route_set(*, prefix: str, gateways: Sequence[str]) -> Route:
    """Create or replace the route for ``prefix``; raise ValidationError."""
    prefix = prefix.strip()
    names = [name.strip() for name in gateways if name.strip()]
    errors: dict[str, str] = {}
    try:
        Route._meta.get_field("prefix").run_validators(prefix)
    except ValidationError as exc:
        errors["prefix"] = " ".join(exc.messages)
    if not names:
        errors["gateways"] = "Name at least one gateway."
    elif len(set(names)) != len(names):
        errors["gateways"] = "Name each gateway once."
    else:
        for name in names:
            try:
                gateway_named(name)
            except ImproperlyConfigured as exc:
                errors["gateways"] = str(exc)
                break
    if errors:
        raise ValidationError(errors)

    route, _ = Route.objects.update_or_create(
        prefix=prefix, defaults={"gateways": names}
    )
    logger.info("route set id=%s gateways=%s", route.pk, len(names))
    return route


def route_delete(*, prefix: str) -> bool:
    """Remove the route for ``prefix``; return whether there was one."""
    deleted, _ = Route.objects.filter(prefix=prefix.strip()).delete()
    return bool(deleted)


def gateways_down(*, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are within a back-off period now."""
    return set(
        GatewayHealth.objects.filter(
            name__in=list(names), down_until__gt=timezone.now()
        ).values_list("name", flat=True)
    )


def _backoff(consecutive_failures: int) -> timedelta:
    base = settings.TMC_GATEWAY_BACKOFF_SECONDS
    seconds = base * 2 ** min(consecutive_failures - 1, 16)
    return timedelta(seconds=min(seconds, settings.TMC_GATEWAY_BACKOFF_MAX_SECONDS))


def gateway_failed(*, name: str, reason: str = "") -> GatewayHealth:
    """Count a temporary failure and take the gateway out for its back-off.

    ``reason`` is the adapter's words (never a message's content), kept for
    the staff health view.
    """
    GatewayHealth.objects.get_or_create(name=name)
    now = timezone.now()
    with transaction.atomic():
        # Locked so that two workers failing at once both count, and the
        # back-off grows from the count the other one left.
        health = GatewayHealth.objects.select_for_update().get(name=name)
        health.consecutive_failures += 1
        health.total_failures += 1
        health.last_failure_at = now
        health.last_error = reason[:200]
        health.down_until = now + _backoff(health.consecutive_failures)
        health.save()
    logger.warning(
        "gateway down name=%s failures_in_a_row=%s until=%s",
        name,
        health.consecutive_failures,
        health.down_until.isoformat(),
    )
    return health


def gateway_succeeded(*, name: str) -> None:
    """Forget a gateway's failures once it takes a message again."""
    # Conditional, so the usual case (a healthy gateway) writes nothing.
    recovered = GatewayHealth.objects.filter(
        name=name, consecutive_failures__gt=0
    ).update(consecutive_failures=0, down_until=None)
    if recovered:
        logger.info("gateway recovered name=%s", name)


def gateway_reset(*, name: str) -> None:
    """Put a gateway back in service before its back-off ends (staff)."""
    GatewayHealth.objects.filter(name=name).update(
        consecutive_failures=0, down_until=None
    )
