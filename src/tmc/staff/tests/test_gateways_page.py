"""Level-3 staff add and change gateway providers and watch their health."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from tmc.audit.models import Event
from tmc.gateways.models import GatewayProvider
from tmc.gateways.providers import provider_credentials
from tmc.gateways.registry import gateway_named
from tmc.gateways.smpp.adapter import SmppGateway
from tmc.gateways.smpp.models import SmppBindStatus
from tmc.routing.models import Route
from tmc.routing.services import gateway_failed
from tmc.routing.throughput import gateway_rate
from tmc.testing import staff_client_for

PASSWORD = "s3cr3t!x"  # nosec B105

SMPP_FORM = {
    "name": "carrier-a",
    "enabled": "on",
    "throughput": "40",
    "host": "smsc.carrier-a.example",
    "port": "2776",
    "system_id": "tmc01",
    "password": PASSWORD,
    "system_type": "VMA",
    "tls": "on",
    "tls_ca_file": "",
    "window": "20",
    "binds": "2",
}


def _add_smpp(client: Any, **changes: str) -> Any:
    return client.post(
        reverse("staff:gateway_new", kwargs={"kind": "smpp"}), {**SMPP_FORM, **changes}
    )


def test_only_level_three_and_up_manage_gateways(staff: dict[int, Any]) -> None:
    for level in (1, 2):
        client = staff_client_for(staff[level])
        assert client.get(reverse("staff:gateways")).status_code == 403
        assert _add_smpp(client).status_code == 403
    assert not GatewayProvider.objects.exists()

    client = staff_client_for(staff[3])
    assert client.get(reverse("staff:gateways")).status_code == 200
    assert _add_smpp(client).status_code == 302
    assert GatewayProvider.objects.filter(name="carrier-a").exists()


def test_an_smpp_provider_is_stored_with_its_password_sealed_and_audited(
    staff: dict[int, Any],
) -> None:
    client = staff_client_for(staff[3])

    _add_smpp(client)

    provider = GatewayProvider.objects.get(name="carrier-a")
    assert provider.kind == "smpp"
    assert provider.throughput == 40
    assert provider.settings["host"] == "smsc.carrier-a.example"
    assert provider.settings["window"] == 20
    assert provider.settings["binds"] == 2
    assert "password" not in provider.settings
    assert PASSWORD not in provider.credentials
    assert provider_credentials(provider) == {"password": PASSWORD}
    event = Event.objects.get(action="gateway.provider_created")
    assert event.details["provider"] == "carrier-a"
    assert "credentials.password" in event.details["changed"]
    assert PASSWORD not in str(event.details)
    # Routes may name it now, and dispatch finds its adapter and its rate.
    assert isinstance(gateway_named("carrier-a"), SmppGateway)
    assert gateway_rate("carrier-a") == 40.0


def test_the_password_is_never_shown_and_an_empty_one_keeps_it(
    staff: dict[int, Any],
) -> None:
    client = staff_client_for(staff[3])
    _add_smpp(client)
    provider = GatewayProvider.objects.get(name="carrier-a")
    url = reverse("staff:gateway_edit", kwargs={"provider_id": provider.pk})

    page = client.get(url).content.decode()
    assert PASSWORD not in page
    assert "Stored. Leave empty to keep it" in page
    assert "smsc.carrier-a.example" in page

    response = client.post(url, {**SMPP_FORM, "password": "", "window": "5"})

    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.settings["window"] == 5
    assert provider_credentials(provider) == {"password": PASSWORD}
    event = Event.objects.get(action="gateway.provider_changed")
    assert event.details["changed"] == ["settings.window"]


def test_a_new_password_replaces_the_old(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[3])
    _add_smpp(client)
    provider = GatewayProvider.objects.get(name="carrier-a")

    client.post(
        reverse("staff:gateway_edit", kwargs={"provider_id": provider.pk}),
        {**SMPP_FORM, "password": "n3w-pass"},
    )

    provider.refresh_from_db()
    assert provider_credentials(provider) == {"password": "n3w-pass"}


def test_bad_settings_are_explained_and_change_nothing(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[3])

    response = _add_smpp(client, name="smpp", port="70000", window="0")

    assert response.status_code == 200
    page = response.content.decode()
    assert "less than or equal to 65535" in page
    assert "greater than or equal to 1" in page
    assert not GatewayProvider.objects.exists()

    response = _add_smpp(client, name="smpp")
    assert "built-in gateway" in response.content.decode()
    assert not GatewayProvider.objects.exists()
    assert not Event.objects.filter(action__startswith="gateway.").exists()


def test_an_http_provider_with_mapped_fields(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[3])
    url = reverse("staff:gateway_new", kwargs={"kind": "http"})
    form = {
        "name": "aggregator",
        "enabled": "on",
        "throughput": "10",
        "url": "https://api.aggregator.example/send",
        "auth_header": "Authorization: Bearer tok-123",
        "field_names": "to=msisdn, text=message",
        "callback_secret": "cb-secret",
    }

    bad = client.post(url, {**form, "field_names": "colour=blue"})
    assert "is not ours=theirs" in bad.content.decode()
    assert client.post(url, form).status_code == 302

    provider = GatewayProvider.objects.get(name="aggregator")
    assert provider.settings["field_names"] == {"to": "msisdn", "text": "message"}
    assert provider_credentials(provider) == {
        "auth_header": "Authorization: Bearer tok-123",
        "callback_secret": "cb-secret",
    }
    edit = client.get(
        reverse("staff:gateway_edit", kwargs={"provider_id": provider.pk})
    ).content.decode()
    assert "tok-123" not in edit
    assert "cb-secret" not in edit
    assert "to=msisdn,text=message" in edit


def test_a_disabled_provider_is_passed_over(staff: dict[int, Any]) -> None:
    from tmc.gateways.base import GatewayError, Submission
    from tmc.lib.segments import Encoding

    client = staff_client_for(staff[3])
    _add_smpp(client, enabled="")
    gateway = gateway_named("carrier-a")
    submission = Submission(1, "TMC", "+447400123456", "Hi", Encoding.GSM7, 1)
    with pytest.raises(GatewayError) as refused:
        gateway.submit(submission)
    assert not refused.value.permanent


def test_the_health_view_shows_binds_failures_and_errors(
    staff: dict[int, Any],
) -> None:
    client = staff_client_for(staff[3])
    _add_smpp(client)
    client.post(
        reverse("staff:routes"), {"destination": "+44", "gateways": "carrier-a"}
    )
    assert Route.objects.get(prefix="+44").gateways == ["carrier-a"]
    now = timezone.now()
    SmppBindStatus.objects.create(
        name="carrier-a-1",
        gateway="carrier-a",
        state="bound",
        since=now,
        window=20,
        in_flight=7,
        rate=312.5,
        accepted=9000,
        receipts=8800,
        last_receipt_at=now,
        heartbeat_at=now,
    )
    SmppBindStatus.objects.create(
        name="carrier-a-2",
        gateway="carrier-a",
        state="down",
        since=now,
        last_error="ConnectionError: Connection refused",
        last_error_at=now,
        heartbeat_at=now - timedelta(minutes=5),
    )
    gateway_failed(name="carrier-a", reason="no bind could take it")

    page = client.get(reverse("staff:gateways")).content.decode()

    assert "window 7/20" in page
    assert "312.5/s" in page
    assert "9000 accepted" in page
    assert "Connection refused" in page
    assert "Not reporting since" in page
    assert "no bind could take it" in page
    assert "Skipped until" in page


def test_a_vonage_provider_keeps_its_secrets_sealed(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[3])
    url = reverse("staff:gateway_new", kwargs={"kind": "vonage"})

    response = client.post(
        url,
        {
            "name": "vonage-uk",
            "enabled": "on",
            "throughput": "30",
            "api_key": "abcd1234",
            "api_secret": "api-secret-x",
            "signature_secret": "sig-secret-x",
            "signature_method": "sha256",
        },
    )

    assert response.status_code == 302
    provider = GatewayProvider.objects.get(name="vonage-uk")
    assert provider.settings["api_key"] == "abcd1234"
    assert provider_credentials(provider) == {
        "api_secret": "api-secret-x",
        "signature_secret": "sig-secret-x",
    }
    page = client.get(
        reverse("staff:gateway_edit", kwargs={"provider_id": provider.pk})
    ).content.decode()
    assert "api-secret-x" not in page
    assert "sig-secret-x" not in page
    assert gateway_named("vonage-uk").name == "vonage-uk"
