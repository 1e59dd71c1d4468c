"""Find the gateway adapters that carry messages, by name."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tmc.gateways.base import Gateway

SIMULATOR = "simulator"


def gateway_named(name: str) -> Gateway:
    """Return the adapter called ``name``, as routes name them.

    ``simulator`` and any ``simulator-<label>`` are simulator instances: one
    simulated provider each, for trying routes and failover without one.
    """
    if name == SIMULATOR or name.startswith(f"{SIMULATOR}-"):
        from tmc.gateways.simulator.adapter import SimulatorGateway

        return SimulatorGateway(name=name)
    if name == "smpp":
        from tmc.gateways.smpp.adapter import SmppGateway

        return SmppGateway()
    if name == "http":
        from tmc.gateways.http.adapter import HttpGateway

        return HttpGateway()
    raise ImproperlyConfigured(
        f"{name!r} names no gateway adapter; "
        "available: simulator, simulator-<label>, smpp, http"
    )


def gateway_for_messages() -> Gateway:
    """Return the configured default adapter (TMC_GATEWAY)."""
    name = settings.TMC_GATEWAY
    try:
        return gateway_named(name)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"TMC_GATEWAY: {exc}") from exc
