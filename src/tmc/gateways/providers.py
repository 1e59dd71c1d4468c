"""Gateway providers as staff configure them: settings and sealed credentials.

Routes name a provider; ``gateways.registry`` builds its adapter from the
row. Credentials are written here only, sealed under the master key
(``lib.keys.master_seal``), and read back only by the adapters and bind
workers that use them: pages show which ones are stored, never their values.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tmc.gateways.models import GatewayProvider
from tmc.lib.keys import master_open, master_seal

logger = logging.getLogger(__name__)

PURPOSE = "gateway-credentials"
Kind = GatewayProvider.Kind

# The secrets each kind keeps, by the name its adapter reads them under.
SECRET_FIELDS: dict[str, tuple[str, ...]] = {
    Kind.SMPP: ("password",),
    Kind.HTTP: ("auth_header", "callback_secret"),
    Kind.VONAGE: ("api_secret", "signature_secret"),
}
# Names that the environment-configured adapters already answer to.
RESERVED_NAMES = ("simulator", "smpp", "http")


def _owner(provider: GatewayProvider) -> str:
    return f"gateways.provider:{provider.uid}"


def provider_credentials(provider: GatewayProvider) -> dict[str, str]:
    """The provider's secrets, opened; empty when none are stored."""
    if not provider.credentials:
        return {}
    opened, _current = master_open(
        django_settings.TMC_HOME, PURPOSE, provider.credentials, owner=_owner(provider)
    )
    values: dict[str, str] = json.loads(opened)
    return values


def provider_save(
    *,
    provider: GatewayProvider | None,
    name: str,
    kind: str,
    enabled: bool,
    throughput: int,
    settings: dict[str, Any],
    secrets: dict[str, str],
) -> tuple[GatewayProvider, list[str]]:
    """Create or change a provider; return it and the names of what changed.

    A secret left empty keeps the stored one, so an edit never needs the
    password again. Raises ValidationError keyed by field.
    """
    creating = provider is None
    if provider is None:
        provider = GatewayProvider(kind=kind)
    elif provider.kind != kind:
        raise ValidationError({"kind": "A provider's kind cannot change."})
    name = name.strip().lower()
    if name in RESERVED_NAMES or name.startswith("simulator-"):
        raise ValidationError(
            {"name": f"{name!r} is the name of a built-in gateway; choose another."}
        )
    unknown = set(secrets) - set(SECRET_FIELDS[kind])
    assert not unknown, f"not secrets of {kind}: {unknown}"

    before = {
        "name": provider.name,
        "enabled": provider.enabled,
        "throughput": provider.throughput,
        **{f"settings.{k}": v for k, v in provider.settings.items()},
    }
    provider.name = name
    provider.enabled = enabled
    provider.throughput = throughput
    provider.settings = dict(settings)
    after = {
        "name": provider.name,
        "enabled": provider.enabled,
        "throughput": provider.throughput,
        **{f"settings.{k}": v for k, v in provider.settings.items()},
    }
    changed = sorted(
        k for k in before.keys() | after.keys() if before.get(k) != after.get(k)
    )
    if creating:
        changed = sorted(after)
    provider.full_clean(exclude=["credentials", "uid"])

    with transaction.atomic():
        current = provider_credentials(provider) if provider.pk else {}
        given = {k: v for k, v in secrets.items() if v}
        if any(current.get(k) != v for k, v in given.items()):
            current.update(given)
            provider.credentials = master_seal(
                django_settings.TMC_HOME,
                PURPOSE,
                json.dumps(current),
                owner=_owner(provider),
            )
            provider.credentials_changed_at = timezone.now()
            changed += [f"credentials.{k}" for k in sorted(given)]
        provider.save()
    _throughputs.clear()
    logger.info(
        "gateway provider saved id=%s kind=%s changed=%s",
        provider.pk,
        provider.kind,
        len(changed),
    )
    return provider, changed


def provider_named(name: str) -> GatewayProvider | None:
    return GatewayProvider.objects.filter(name=name).first()


def credentials_reseal() -> int:
    """Re-seal every provider's credentials under the current master key."""
    from tmc.accounts.encryption import master_sealed_reseal

    resealed = master_sealed_reseal(
        GatewayProvider.objects.all(),
        field="credentials",
        purpose=PURPOSE,
        owner=_owner,
    )
    logger.info("gateway credentials re-sealed count=%s", resealed)
    return resealed


# Each worker asks for a gateway's rate before every message; a provider's
# configured rate is read at most every few seconds per process.
_THROUGHPUT_TTL = 5.0
_throughputs: dict[str, tuple[float, int | None]] = {}


def provider_throughput(name: str) -> int | None:
    """The messages a second configured for provider ``name``, if it is one."""
    now = time.monotonic()
    cached = _throughputs.get(name)
    if cached is not None and now - cached[0] < _THROUGHPUT_TTL:
        return cached[1]
    rate = (
        GatewayProvider.objects.filter(name=name)
        .values_list("throughput", flat=True)
        .first()
    )
    _throughputs[name] = (now, rate)
    return rate
