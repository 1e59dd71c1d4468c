"""``tmc gateway test`` with the simulator: any gateway name, even off-route."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from tmc.audit.models import Event
from tmc.messaging.models import Message
from tmc.routing.services import gateway_failed, route_set
from tmc.testing import make_tenant

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_gateway_in_back_off_and_on_no_route_can_still_be_tried(
    settings: Any,
) -> None:
    settings.TMC_SIMULATOR_REPORT_DELAY = 0
    tenant = make_tenant("Acme", credits=5)
    route_set(prefix="", gateways=["simulator"])
    gateway_failed(name="simulator-spare")
    out = StringIO()

    call_command(
        "gateway",
        "test",
        "simulator-spare",
        "--to",
        "07400 123456",
        "--org",
        str(tenant.organisation.pk),
        stdout=out,
    )

    assert "Delivered after" in out.getvalue()
    message = Message.objects.get()
    assert (message.gateway, message.status) == ("simulator-spare", "delivered")
    tenant.organisation.refresh_from_db()
    assert tenant.organisation.credit_balance == 5
    event = Event.objects.get(action="message.sent")
    assert event.details["gateway_test"] == "simulator-spare"
