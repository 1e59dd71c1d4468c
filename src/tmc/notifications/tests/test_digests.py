"""Reply alerts gathered into one hourly email, for those who ask."""

from __future__ import annotations

import re

from django.core.mail import EmailMessage
from django.urls import reverse

from tmc.gateways.simulator.services import handset_reply
from tmc.messaging.services import message_send
from tmc.notifications.models import DigestItem, Preference
from tmc.notifications.services import digests_send
from tmc.testing import SENDER, CommitCapture, Tenant

NUMBER = "+447400123456"


def _reply(tenant: Tenant, body: str = "YES") -> None:
    message_send(user=tenant.user, recipient=NUMBER, body="Shift on Saturday?")
    handset_reply(handset_number=NUMBER, to=SENDER, body=body)


def _choose_digest(tenant: Tenant) -> None:
    tenant.client_for(tenant.user).post(
        reverse("notifications:preferences"),
        {"reply_received__in_app": "on", "reply_received__digest": "on"},
    )


def test_replies_wait_for_the_hourly_digest_then_arrive_in_one_email(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    _choose_digest(tenant_a)
    with committed(execute=True):
        _reply(tenant_a, "YES")
        _reply(tenant_a, "NO")

    assert mailoutbox == []
    assert DigestItem.objects.filter(sent_at__isnull=True).count() == 2

    with committed(execute=True):
        assert digests_send() == 1
    with committed(execute=True):
        assert digests_send() == 0

    (email,) = mailoutbox
    assert email.to == [tenant_a.user.email]
    assert "2 notices" in email.subject
    body = str(email.body)
    assert body.count("reply from +44 7400 1•••56") == 2
    assert NUMBER not in body
    assert "YES" not in body
    assert "NO" not in body


def test_choosing_the_digest_turns_off_the_immediate_email(
    tenant_a: Tenant,
) -> None:
    tenant_a.client_for(tenant_a.user).post(
        reverse("notifications:preferences"),
        {"reply_received__email": "on", "reply_received__digest": "on"},
    )

    preference = Preference.objects.get(user=tenant_a.user, kind="reply_received")
    assert preference.email_digest


def test_security_notices_are_never_held_for_a_digest(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    client = tenant_a.client_for(tenant_a.administrator)
    client.post(
        reverse("notifications:preferences"),
        {"password_changed__digest": "on", "user_created__digest": "on"},
    )

    assert not Preference.objects.filter(email_digest=True).exists()
    page = client.get(reverse("notifications:preferences")).content.decode()
    digest_box = re.search(r'<input[^>]*name="password_changed__digest"[^>]*>', page)
    assert digest_box is not None
    assert "disabled" in digest_box.group(0)
    assert "checked" not in digest_box.group(0)
