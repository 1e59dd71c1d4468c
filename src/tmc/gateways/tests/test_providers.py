"""Provider credentials: sealed to their row, re-sealed with a new master key."""

from __future__ import annotations

import pytest

from tmc.accounts.encryption import master_key_rotate
from tmc.gateways.models import GatewayProvider
from tmc.gateways.providers import provider_credentials, provider_save
from tmc.lib.crypto import DecryptionError

pytestmark = pytest.mark.django_db


def _provider(name: str, password: str) -> GatewayProvider:
    provider, _ = provider_save(
        provider=None,
        name=name,
        kind=GatewayProvider.Kind.SMPP,
        enabled=True,
        throughput=10,
        settings={"host": "127.0.0.1", "port": 2775, "system_id": "x"},
        secrets={"password": password},
    )
    return provider


def test_credentials_copied_to_another_provider_do_not_open() -> None:
    first = _provider("carrier-a", "pw-a")
    second = _provider("carrier-b", "pw-b")

    GatewayProvider.objects.filter(pk=second.pk).update(credentials=first.credentials)
    second.refresh_from_db()

    with pytest.raises(DecryptionError):
        provider_credentials(second)


def test_a_master_key_rotation_re_seals_the_credentials() -> None:
    provider = _provider("carrier-a", "pw-a")
    sealed_before = provider.credentials

    master_key_rotate()

    provider.refresh_from_db()
    assert provider.credentials != sealed_before
    assert provider_credentials(provider) == {"password": "pw-a"}
