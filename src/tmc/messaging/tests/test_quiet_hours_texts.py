"""One-to-one texts sent in the organisation's quiet hours wait for their end."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from tmc.accounts.models import Organisation
from tmc.audit.models import Event
from tmc.gateways.simulator.models import SimulatedDelivery
from tmc.identity.models import User
from tmc.messaging.models import Message
from tmc.messaging.scheduling import messages_release_held
from tmc.messaging.services import message_dispatch, message_send
from tmc.messaging.trial import verified_number_add
from tmc.testing import SENDER, CommitCapture, Tenant

NUMBER = "07400 123456"


def _quiet_now(tenant: Tenant, *, hours_left: int = 2) -> None:
    """Make the organisation's quiet hours run from an hour ago."""
    local = datetime.now(UTC).astimezone(tenant.organisation.zone)
    start = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    end = (local + timedelta(hours=hours_left)).time().replace(second=0, microsecond=0)
    Organisation.objects.filter(pk=tenant.organisation.pk).update(
        quiet_start=start, quiet_end=end
    )


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def test_a_text_sent_in_quiet_hours_is_held_then_released(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    _quiet_now(tenant_a)
    user = _fresh(tenant_a.user)

    with committed(execute=True):
        message = message_send(user=user, recipient=NUMBER, body="Hello")

    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.hold_until is not None
    assert message.hold_until > datetime.now(UTC)
    assert message.expires_at == message.hold_until + timedelta(hours=24)
    # A stray dispatch before the end of the hold claims nothing.
    assert message_dispatch(message_id=message.pk) is None
    assert messages_release_held() == 0
    assert not SimulatedDelivery.objects.exists()
    event = Event.objects.get(action="message.sent")
    assert "held_until" in event.details

    released_at = message.hold_until
    with committed(execute=True):
        assert messages_release_held(now=released_at) == 1

    sent = Message.objects.get(pk=message.pk)
    assert sent.status == Message.Status.DELIVERED
    assert sent.hold_until is None
    assert SimulatedDelivery.objects.count() == 1
    assert messages_release_held(now=released_at) == 0


def test_a_text_outside_quiet_hours_goes_at_once(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    local = datetime.now(UTC).astimezone(tenant_a.organisation.zone)
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(
        quiet_start=(local + timedelta(hours=1)).time(),
        quiet_end=(local + timedelta(hours=2)).time(),
    )

    with committed(execute=True):
        message = message_send(user=_fresh(tenant_a.user), recipient=NUMBER, body="Hi")

    message.refresh_from_db()
    assert message.hold_until is None
    assert message.status == Message.Status.DELIVERED


def test_the_compose_page_warns_in_quiet_hours_and_says_when_it_goes(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)
    assert b'data-testid="quiet-hours"' not in client.get("/messages/compose/").content

    _quiet_now(tenant_a)
    page = client.get("/messages/compose/")

    assert b'data-testid="quiet-hours"' in page.content
    response = client.post(
        "/messages/compose/",
        {"recipient": NUMBER, "sender": SENDER, "body": "Hello"},
        follow=True,
    )
    assert b"held for your quiet hours" in response.content
    assert Message.objects.get().hold_until is not None


def test_a_verification_code_is_not_held(tenant_a: Tenant) -> None:
    """Codes are asked for by a person waiting: quiet hours are for sends."""
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(
        quiet_start=time(0), quiet_end=time(23, 59)
    )
    verified_number_add(user=_fresh(tenant_a.controller), number=NUMBER)

    assert Message.objects.get().hold_until is None
