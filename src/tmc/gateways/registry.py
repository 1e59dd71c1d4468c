"""Find the gateway adapter that carries messages."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tmc.gateways.base import Gateway


def gateway_for_messages() -> Gateway:
    """Return the configured adapter (TMC_GATEWAY)."""
    name = settings.TMC_GATEWAY
    if name == "simulator":
        from tmc.gateways.simulator.adapter import SimulatorGateway

        return SimulatorGateway()
    if name == "smpp":
        from tmc.gateways.smpp.adapter import SmppGateway

        return SmppGateway()
    if name == "http":
        from tmc.gateways.http.adapter import HttpGateway

        return HttpGateway()
    raise ImproperlyConfigured(
        f"TMC_GATEWAY={name!r} names no gateway adapter; "
        "available: simulator, smpp, http"
    )
