"""Level-3 staff manage routes and gateway health in the console."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from tmc.audit.models import Event
from tmc.routing.models import Route
from tmc.routing.services import gateway_failed, gateways_down
from tmc.testing import staff_client_for


def test_only_level_three_and_up_manage_routes(staff: dict[int, Any]) -> None:
    for level in (1, 2):
        client = staff_client_for(staff[level])
        assert client.get(reverse("staff:routes")).status_code == 403
        response = client.post(
            reverse("staff:routes"), {"destination": "+44", "gateways": "simulator"}
        )
        assert response.status_code == 403
        assert "Routes</a>" not in client.get(reverse("staff:levels")).content.decode()
    assert not Route.objects.exists()

    for level in (3, 4):
        client = staff_client_for(staff[level])
        assert client.get(reverse("staff:routes")).status_code == 200


def test_a_route_is_set_listed_and_recorded(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[3])

    response = client.post(
        reverse("staff:routes"),
        {"destination": "+44", "gateways": "simulator-uk, simulator"},
    )

    assert response.status_code == 302
    assert Route.objects.get(prefix="+44").gateways == ["simulator-uk", "simulator"]
    page = client.get(reverse("staff:routes")).content.decode()
    assert "simulator-uk, simulator" in page
    event = Event.objects.get(action="route.set")
    assert event.details["gateways"] == ["simulator-uk", "simulator"]
    assert event.details["staff_id"] == staff[3].pk


def test_a_bad_route_is_explained_beside_its_field(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[3])

    response = client.post(
        reverse("staff:routes"), {"destination": "44", "gateways": "carrier-pigeon"}
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "A prefix is + and up to six digits" in page
    assert "names no gateway adapter" in page
    assert not Route.objects.exists()


def test_a_route_is_deleted_and_a_gateway_put_back_in_service(
    staff: dict[int, Any],
) -> None:
    client = staff_client_for(staff[3])
    client.post(reverse("staff:routes"), {"destination": "+1", "gateways": "simulator"})
    gateway_failed(name="simulator")
    assert "Skipped until" in client.get(reverse("staff:routes")).content.decode()

    client.post(reverse("staff:route_delete"), {"prefix": "+1"})
    client.post(reverse("staff:gateway_reset"), {"gateway": "simulator"})

    assert not Route.objects.exists()
    assert gateways_down(names=["simulator"]) == set()
    assert Event.objects.filter(action="route.deleted").count() == 1
    assert Event.objects.filter(action="gateway.reset").count() == 1
