"""Routes by longest prefix, gateway health and back-off, the command."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from tmc.routing.models import GatewayHealth, Route
from tmc.routing.services import (
    gateway_failed,
    gateway_reset,
    gateway_succeeded,
    gateways_down,
    route_gateways,
    route_set,
)

pytestmark = pytest.mark.django_db


def test_without_routes_the_configured_gateway_carries_everything(
    settings: Any,
) -> None:
    settings.TMC_GATEWAY = "simulator"

    assert route_gateways(number="+447400123456") == ["simulator"]


def test_the_longest_matching_prefix_wins() -> None:
    route_set(prefix="", gateways=["simulator"])
    route_set(prefix="+4", gateways=["simulator-europe"])
    route_set(prefix="+44", gateways=["simulator-uk", "simulator"])
    route_set(prefix="+447", gateways=["simulator-mobile"])

    assert route_gateways(number="+447400123456") == ["simulator-mobile"]
    assert route_gateways(number="+442071234567") == ["simulator-uk", "simulator"]
    assert route_gateways(number="+41791234567") == ["simulator-europe"]
    assert route_gateways(number="+15551234567") == ["simulator"]


def test_setting_a_prefix_again_replaces_its_gateways() -> None:
    route_set(prefix="+44", gateways=["simulator-a"])
    route_set(prefix="+44", gateways=["simulator-b", "simulator-a"])

    assert Route.objects.get(prefix="+44").gateways == ["simulator-b", "simulator-a"]


@pytest.mark.parametrize(
    ("prefix", "gateways", "field"),
    [
        ("44", ["simulator"], "prefix"),
        ("+0", ["simulator"], "prefix"),
        ("+44a", ["simulator"], "prefix"),
        ("+44", [], "gateways"),
        ("+44", ["simulator", "simulator"], "gateways"),
        ("+44", ["carrier-pigeon"], "gateways"),
    ],
)
def test_a_bad_route_is_refused(prefix: str, gateways: list[str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        route_set(prefix=prefix, gateways=gateways)

    assert field in caught.value.message_dict
    assert not Route.objects.exists()


def test_a_failing_gateway_is_down_for_a_back_off_that_doubles(
    settings: Any,
) -> None:
    settings.TMC_GATEWAY_BACKOFF_SECONDS = 30
    settings.TMC_GATEWAY_BACKOFF_MAX_SECONDS = 100

    backoffs = []
    for _ in range(3):
        health = gateway_failed(name="simulator-a")
        assert health.down_until is not None
        assert health.last_failure_at is not None
        backoffs.append((health.down_until - health.last_failure_at).total_seconds())

    assert backoffs == [30, 60, 100]
    assert gateways_down(names=["simulator-a", "simulator-b"]) == {"simulator-a"}
    assert GatewayHealth.objects.get(name="simulator-a").total_failures == 3


def test_a_gateway_is_back_when_its_back_off_ends() -> None:
    gateway_failed(name="simulator-a")
    GatewayHealth.objects.filter(name="simulator-a").update(
        down_until=timezone.now() - timedelta(seconds=1)
    )

    assert gateways_down(names=["simulator-a"]) == set()


def test_a_success_forgets_the_failures_in_a_row_but_not_the_total() -> None:
    gateway_failed(name="simulator-a")
    gateway_failed(name="simulator-a")

    gateway_succeeded(name="simulator-a")

    health = GatewayHealth.objects.get(name="simulator-a")
    assert health.consecutive_failures == 0
    assert health.down_until is None
    assert health.total_failures == 2


def test_staff_can_put_a_gateway_back_in_service() -> None:
    gateway_failed(name="simulator-a")

    gateway_reset(name="simulator-a")

    assert gateways_down(names=["simulator-a"]) == set()


def test_the_routes_command_sets_lists_and_deletes() -> None:
    out = StringIO()
    call_command("routes", "set", "+44", "simulator-uk", "simulator", stdout=out)
    call_command("routes", "set", "", "simulator", stdout=out)
    gateway_failed(name="simulator-uk")

    listing = StringIO()
    call_command("routes", "list", stdout=listing)
    call_command("routes", "delete", "+44", stdout=out)

    assert "+44        simulator-uk, simulator" in listing.getvalue()
    assert "(default)  simulator" in listing.getvalue()
    assert "down until" in listing.getvalue()
    assert list(Route.objects.values_list("prefix", flat=True)) == [""]


def test_the_routes_command_explains_a_bad_route() -> None:
    with pytest.raises(CommandError, match="no gateway adapter"):
        call_command("routes", "set", "+44", "carrier-pigeon", stdout=StringIO())
