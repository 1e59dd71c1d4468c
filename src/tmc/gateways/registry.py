"""Find the gateway adapters that carry messages, by name."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from tmc.gateways.base import (
    BatchOutcome,
    Gateway,
    GatewayError,
    Submission,
    SubmitResult,
)

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
    return _provider_gateway(name)


def _provider_gateway(name: str) -> Gateway:
    """The adapter of a provider staff configured (``/staff/gateways/``)."""
    from tmc.gateways.models import GatewayProvider
    from tmc.gateways.providers import provider_named

    provider = provider_named(name)
    if provider is None:
        raise ImproperlyConfigured(
            f"{name!r} names no gateway adapter; available: simulator, "
            "simulator-<label>, smpp, http, or a provider set up by staff"
        )
    if not provider.enabled:
        return DisabledGateway(name)
    if provider.kind == GatewayProvider.Kind.SMPP:
        from tmc.gateways.smpp.adapter import SmppGateway

        return SmppGateway(name=provider.name)
    if provider.kind == GatewayProvider.Kind.VONAGE:
        from tmc.gateways.vonage.adapter import VonageGateway

        return VonageGateway.for_provider(provider)
    from tmc.gateways.http.adapter import HttpConfig, HttpGateway

    return HttpGateway(HttpConfig.from_provider(provider))


class DisabledGateway:
    """A provider staff switched off: routes pass over it to the next."""

    def __init__(self, name: str) -> None:
        self.name = name

    def submit(self, submission: Submission) -> SubmitResult:
        raise GatewayError(f"{self.name} is disabled", permanent=False)

    def submit_batch(self, submissions: Sequence[Submission]) -> list[BatchOutcome]:
        raise GatewayError(f"{self.name} is disabled", permanent=False)

    def lookup(self, message_id: int) -> str | None:
        raise GatewayError(f"{self.name} is disabled", permanent=False)


def gateway_for_messages() -> Gateway:
    """Return the configured default adapter (TMC_GATEWAY)."""
    name = settings.TMC_GATEWAY
    try:
        return gateway_named(name)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"TMC_GATEWAY: {exc}") from exc
