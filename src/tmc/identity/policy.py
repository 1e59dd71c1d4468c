"""Find the security policy in force for an organisation."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING

from django.conf import settings

from tmc.lib.security_policy import ORGANISATION_ADJUSTABLE, SecurityPolicy, tighten

if TYPE_CHECKING:
    from tmc.accounts.models import Organisation


def platform_policy() -> SecurityPolicy:
    policy: SecurityPolicy = settings.TMC_SECURITY_POLICY
    return policy


def policy_for(organisation: Organisation | None) -> SecurityPolicy:
    """The policy in force for ``organisation`` (the platform's, tightened)."""
    base = platform_policy()
    if organisation is None:
        return base
    # Asked several times per request (session rules, page, services); the
    # organisation object lives for one request, so it can carry the answer.
    cached: SecurityPolicy | None = getattr(organisation, "_tmc_policy", None)
    if cached is not None:
        return cached
    overrides = getattr(organisation, "security", None)
    policy = base if overrides is None else _tightened(base, overrides)
    organisation._tmc_policy = policy  # type: ignore[attr-defined]
    return policy


def _tightened(base: SecurityPolicy, overrides: object) -> SecurityPolicy:
    return tighten(
        base,
        **{
            field.name: getattr(overrides, field.name)
            for field in fields(SecurityPolicy)
            if field.name in ORGANISATION_ADJUSTABLE
        },
    )
