"""An SMPP provider set up by staff carries messages through its own binds."""

from __future__ import annotations

import pytest

from tmc.gateways.models import GatewayProvider
from tmc.gateways.providers import provider_save
from tmc.gateways.smpp.bind import BindConfig
from tmc.gateways.smpp.models import SmppBindStatus, SmppPart
from tmc.gateways.smpp.peer import LocalSmsc
from tmc.gateways.smpp.tests.conftest import BindFactory
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.routing.services import route_set
from tmc.testing import make_tenant, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _provider(smsc: LocalSmsc, name: str) -> GatewayProvider:
    provider, _ = provider_save(
        provider=None,
        name=name,
        kind=GatewayProvider.Kind.SMPP,
        enabled=True,
        throughput=500,
        settings={
            "host": "127.0.0.1",
            "port": smsc.port,
            "system_id": f"{name}-id",
            "system_type": "VMA",
            "window": 4,
            "binds": 1,
        },
        secrets={"password": "pw-carr1"},
    )
    return provider


def _bind_values(config: BindConfig) -> dict[str, object]:
    keys = ("gateway", "host", "port", "system_id", "password", "system_type")
    return {key: getattr(config, key) for key in keys} | {"window": config.window}


def test_a_routed_message_goes_through_the_providers_bind_and_reports_status(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    provider = _provider(smsc, "carrier-a")
    route_set(prefix="+44", gateways=["carrier-a"])
    bind = smpp_bind(**_bind_values(BindConfig.from_provider(provider)))

    message = message_send(user=tenant.user, recipient="07400 123456", body="Hello")

    wait_until(
        lambda: Message.objects.get(pk=message.pk).status == Message.Status.DELIVERED,
        timeout=10,
    )
    assert Message.objects.get(pk=message.pk).gateway == "carrier-a"
    assert SmppPart.objects.get(message=message).gateway == "carrier-a"
    [bound] = smsc.state()["binds"]
    assert (bound["systemId"], bound["password"]) == ("carrier-a-id", "pw-carr1")
    wait_until(
        lambda: SmppBindStatus.objects.filter(
            name=bind.config.name, accepted__gte=1, receipts__gte=1
        ).exists(),
        timeout=10,
    )
    status = SmppBindStatus.objects.get(name=bind.config.name)
    assert (status.gateway, status.state, status.window) == ("carrier-a", "bound", 4)
    assert status.last_receipt_at is not None


def test_a_bind_only_sends_its_own_providers_parts(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    tenant = make_tenant("Acme")
    _provider(smsc, "carrier-a")
    _provider(smsc, "carrier-b")
    route_set(prefix="+44", gateways=["carrier-b"])
    smpp_bind(gateway="carrier-a")

    message = message_send(user=tenant.user, recipient="07400 123456", body="Hi")

    part = SmppPart.objects.get(message=message)
    assert part.gateway == "carrier-b"
    assert part.state == SmppPart.State.QUEUED
    assert smsc.state()["submits"] == []


def test_a_lost_bind_keeps_its_error_for_the_health_view(
    smsc: LocalSmsc, smpp_bind: BindFactory
) -> None:
    bind = smpp_bind()
    rows = SmppBindStatus.objects.filter(name=bind.config.name)
    wait_until(lambda: rows.filter(state="bound").exists(), timeout=5)

    smsc.drop()

    wait_until(lambda: rows.exclude(last_error="").exists(), timeout=10)
    wait_until(lambda: rows.filter(state="bound").exists(), timeout=10)
    status = rows.get()
    assert status.last_error_at is not None
    assert bind.stats.binds == 2
