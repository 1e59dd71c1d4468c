from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from tmc.gateways.simulator.adapter import NAME


def simulator(request: HttpRequest) -> dict[str, bool]:
    """Whether pages may offer the simulated handsets."""
    return {"simulator_in_use": settings.TMC_GATEWAY == NAME}
