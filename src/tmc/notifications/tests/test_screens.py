"""The bell, the list, opening a notice, and the preferences page."""

from __future__ import annotations

import re

import pytest
from django.core.mail import EmailMessage
from django.urls import reverse

from tmc.accounts.services import credits_debit
from tmc.gateways.simulator.services import handset_reply
from tmc.messaging.services import message_send
from tmc.notifications.models import LowCreditAlert, Notification, Preference
from tmc.testing import SENDER, CommitCapture, Tenant

NUMBER = "+447400123456"
BACKGROUND = {"HX-Request": "true", "X-TMC-Background": "1"}


@pytest.fixture(autouse=True)
def _start_clean(tenant_a: Tenant, tenant_b: Tenant) -> None:
    Notification.objects.all().delete()


def _reply(tenant: Tenant) -> None:
    message_send(user=tenant.user, recipient=NUMBER, body="Shift on Saturday?")
    handset_reply(handset_number=NUMBER, to=SENDER, body="YES")


def test_the_bell_counts_only_my_unread_notices(tenant_a: Tenant) -> None:
    _reply(tenant_a)
    _reply(tenant_a)
    client = tenant_a.client_for(tenant_a.user)

    bell = client.get(reverse("notifications:bell"), headers=BACKGROUND)

    assert bell.status_code == 200
    assert b", 2 unread" in bell.content
    other = tenant_a.client_for(tenant_a.administrator)
    assert b"unread" not in other.get(reverse("notifications:bell")).content


def test_every_signed_in_page_carries_the_bell(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)

    page = client.get(reverse("accounts:dashboard")).content.decode()

    assert 'id="bell"' in page
    assert reverse("notifications:bell") in page
    assert "X-TMC-Background" in page


def test_desktop_pop_ups_are_listed_only_for_those_who_chose_them(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)
    _reply(tenant_a)
    assert (
        b"data-desktop-notices" not in client.get(reverse("notifications:bell")).content
    )

    Preference.objects.create(
        user=tenant_a.user, kind="reply_received", in_app=True, desktop=True
    )
    _reply(tenant_a)
    bell = client.get(reverse("notifications:bell")).content.decode()

    assert "data-desktop-notices" in bell
    assert bell.count("<li data-id=") == 1


def test_opening_a_notice_marks_it_read_and_follows_its_link(tenant_a: Tenant) -> None:
    _reply(tenant_a)
    notice = Notification.objects.get()
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(reverse("notifications:open", args=[notice.pk]))

    assert response.status_code == 302
    assert response["Location"] == notice.link
    notice.refresh_from_db()
    assert notice.read_at is not None


def test_nobody_opens_a_colleagues_notice(tenant_a: Tenant) -> None:
    _reply(tenant_a)
    notice = Notification.objects.get()
    colleague = tenant_a.client_for(tenant_a.administrator)

    response = colleague.post(reverse("notifications:open", args=[notice.pk]))

    assert response.status_code == 404
    notice.refresh_from_db()
    assert notice.read_at is None


def test_mark_all_read_touches_only_mine(tenant_a: Tenant) -> None:
    _reply(tenant_a)
    credits_debit(organisation=tenant_a.organisation, amount=60, reason="Send")
    client = tenant_a.client_for(tenant_a.user)

    client.post(reverse("notifications:read_all"))

    assert not Notification.objects.filter(
        recipient=tenant_a.user, read_at__isnull=True
    ).exists()
    assert Notification.objects.filter(
        recipient=tenant_a.controller, read_at__isnull=True
    ).exists()


def test_the_inbox_lists_notices_newest_first(tenant_a: Tenant) -> None:
    _reply(tenant_a)
    client = tenant_a.client_for(tenant_a.user)

    page = client.get(reverse("notifications:inbox")).content.decode()

    assert "reply from +44 7400 1•••56" in page
    assert "Mark all 1 read" in page


def test_preferences_switch_off_reply_notices(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(reverse("notifications:preferences"), {})
    with committed(execute=True):
        _reply(tenant_a)

    assert response.status_code == 302
    assert not Notification.objects.filter(kind="reply_received").exists()
    assert mailoutbox == []


def test_preferences_can_ask_for_reply_emails(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    client.post(
        reverse("notifications:preferences"),
        {"reply_received__in_app": "on", "reply_received__email": "on"},
    )
    with committed(execute=True):
        _reply(tenant_a)

    (email,) = mailoutbox
    assert email.to == [tenant_a.user.email]
    assert "YES" not in str(email.body)
    assert Notification.objects.filter(kind="reply_received").count() == 1


def test_security_notices_cannot_be_switched_off(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    """Policy C10/C12: Administrators are always told; the form cannot mute it."""
    client = tenant_a.client_for(tenant_a.administrator)
    client.post(reverse("notifications:preferences"), {})  # everything unticked

    stored = Preference.objects.get(user=tenant_a.administrator, kind="account_locked")
    assert stored.in_app
    assert stored.email
    page = client.get(reverse("notifications:preferences")).content.decode()
    (box,) = re.findall(r'<input[^>]*name="account_locked__email"[^>]*>', page)
    assert "disabled" in box
    assert "checked" in box


def test_changing_preferences_is_logged(tenant_a: Tenant) -> None:
    from tmc.audit.models import Event

    client = tenant_a.client_for(tenant_a.user)
    client.post(reverse("notifications:preferences"), {})

    event = Event.objects.get(action="notifications.preferences_changed")
    assert event.details["channels"]["reply_received"] == []


def test_a_controller_sets_the_low_credit_level_behind_the_second_password(
    tenant_a: Tenant,
) -> None:
    url = reverse("notifications:low_credit")
    without_second = tenant_a.client_for(tenant_a.controller)
    assert without_second.post(url, {"threshold": "90"}).status_code == 302
    assert not LowCreditAlert.objects.filter(threshold=90).exists()

    client = tenant_a.client_for(tenant_a.controller, second_factor=True)
    response = client.post(url, {"threshold": "120"})

    assert response.status_code == 302
    alert = LowCreditAlert.objects.get(organisation=tenant_a.organisation)
    assert alert.threshold == 120
    # The balance (100) is already below the new level: the Controllers hear.
    assert Notification.objects.filter(
        kind="low_credit", recipient=tenant_a.controller
    ).exists()


@pytest.mark.parametrize("role", ["administrator", "user"])
def test_only_controllers_set_the_low_credit_level(tenant_a: Tenant, role: str) -> None:
    client = tenant_a.client_for(getattr(tenant_a, role), second_factor=role != "user")

    response = client.post(reverse("notifications:low_credit"), {"threshold": "5"})

    assert response.status_code == 403
    assert not LowCreditAlert.objects.filter(threshold=5).exists()


def test_a_bad_low_credit_level_is_refused_next_to_the_field(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    response = client.post(reverse("notifications:low_credit"), {"threshold": "-3"})

    assert response.status_code == 400
    assert b"id_threshold-error" in response.content
    assert not LowCreditAlert.objects.filter(threshold=-3).exists()
