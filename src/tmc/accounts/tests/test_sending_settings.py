"""The Sending settings page: time zone, quiet hours and validity period."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tmc.accounts.models import Organisation
from tmc.accounts.services import sending_settings_set
from tmc.audit.models import Event
from tmc.identity.models import User
from tmc.messaging import campaigns
from tmc.messaging.campaigns import campaign_send
from tmc.messaging.models import Message
from tmc.messaging.recovery import messages_expire
from tmc.messaging.services import message_send
from tmc.testing import Tenant

PAGE = "/organisation/sending/"


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "time_zone": "Europe/Paris",
        "quiet_start": "21:00",
        "quiet_end": "08:00",
        "validity_hours": "6",
    }
    data.update(overrides)
    return data


def _organisation(tenant: Tenant) -> Organisation:
    return Organisation.objects.get(pk=tenant.organisation.pk)


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def test_the_controller_saves_the_settings_and_the_change_is_logged(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(PAGE, _form())

    assert response.status_code == 302
    organisation = _organisation(tenant_a)
    assert organisation.time_zone == "Europe/Paris"
    assert (organisation.quiet_start, organisation.quiet_end) == (time(21), time(8))
    assert organisation.message_validity_hours == 6
    event = Event.objects.get(action="settings.sending_changed")
    assert event.organisation_id == organisation.pk
    assert event.details["after"]["validity_hours"] == 6
    assert event.details["before"]["validity_hours"] is None
    page = client.get(PAGE)
    assert b'value="6"' in page.content
    assert b'value="21:00"' in page.content


def test_the_page_asks_for_the_second_password_first(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.controller)

    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/second-password/")


def test_administrators_and_users_are_refused(tenant_a: Tenant) -> None:
    for user in (tenant_a.administrator, tenant_a.user):
        client = tenant_a.client_for(user, second_factor=True)
        assert client.get(PAGE).status_code == 403
        assert client.post(PAGE, _form()).status_code == 403
    assert _organisation(tenant_a).message_validity_hours is None
    with pytest.raises(PermissionDenied):
        sending_settings_set(
            actor=tenant_a.administrator,
            time_zone="Europe/Paris",
            quiet_start=None,
            quiet_end=None,
            validity_hours=None,
        )


def test_bad_values_are_refused_by_field_and_change_nothing(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(
        PAGE, _form(quiet_end="", validity_hours="0", time_zone="Mars/Olympus")
    )

    assert response.status_code == 200
    assert {"time_zone"} <= set(response.context["form"].errors)
    with pytest.raises(ValidationError) as caught:
        sending_settings_set(
            actor=tenant_a.controller,
            time_zone="Mars/Olympus",
            quiet_start=time(21),
            quiet_end=None,
            validity_hours=500,
        )
    assert set(caught.value.message_dict) == {
        "time_zone",
        "quiet_end",
        "validity_hours",
    }
    organisation = _organisation(tenant_a)
    assert organisation.time_zone == "Europe/London"
    assert organisation.quiet_start is None
    assert organisation.message_validity_hours is None
    assert not Event.objects.filter(action="settings.sending_changed").exists()


def test_quiet_hours_of_the_same_start_and_end_are_refused(tenant_a: Tenant) -> None:
    with pytest.raises(ValidationError) as caught:
        sending_settings_set(
            actor=tenant_a.controller,
            time_zone="Europe/London",
            quiet_start=time(9),
            quiet_end=time(9),
            validity_hours=None,
        )
    assert set(caught.value.message_dict) == {"quiet_end"}


def test_a_text_expires_after_the_organisations_validity_period(
    tenant_a: Tenant,
) -> None:
    sending_settings_set(
        actor=tenant_a.controller,
        time_zone="Europe/London",
        quiet_start=None,
        quiet_end=None,
        validity_hours=2,
    )
    user = _fresh(tenant_a.user)
    balance = _organisation(tenant_a).credit_balance

    message = message_send(user=user, recipient="07400 123456", body="Hello")

    assert message.expires_at is not None
    assert message.expires_at - message.created_at == pytest.approx(
        timedelta(hours=2), abs=timedelta(seconds=5)
    )
    assert messages_expire(now=message.expires_at - timedelta(minutes=1)) == 0
    assert messages_expire(now=message.expires_at) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.EXPIRED
    assert _organisation(tenant_a).credit_balance == balance


def test_without_its_own_period_the_platform_default_applies(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_MESSAGE_VALIDITY_HOURS = 5

    message = message_send(
        user=_fresh(tenant_a.user), recipient="07400 123456", body="x"
    )

    assert message.expires_at is not None
    assert message.expires_at - message.created_at == pytest.approx(
        timedelta(hours=5), abs=timedelta(seconds=5)
    )


def test_a_held_campaign_counts_its_validity_from_the_end_of_quiet_hours(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)
    local_now = datetime.now(UTC).astimezone(tenant_a.organisation.zone)
    sending_settings_set(
        actor=tenant_a.controller,
        time_zone="Europe/London",
        quiet_start=(local_now - timedelta(hours=1)).time().replace(microsecond=0),
        quiet_end=(local_now + timedelta(hours=3)).time().replace(microsecond=0),
        validity_hours=1,
    )

    campaign = campaign_send(
        user=_fresh(tenant_a.user), numbers_text="07400 000001", body="Hi"
    )

    assert campaign.hold_until is not None
    message = Message.objects.get(campaign=campaign)
    assert message.expires_at == campaign.hold_until + timedelta(hours=1)
    assert messages_expire(now=campaign.hold_until) == 0
