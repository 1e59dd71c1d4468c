"""Each event reaches exactly the people it should, by the channels it should."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.mail import EmailMessage
from django.test import Client
from django.urls import reverse

from tmc.accounts.services import credits_debit
from tmc.gateways.simulator.services import handset_reply
from tmc.identity.models import Role, User
from tmc.identity.services import user_create
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.notifications.models import Notification
from tmc.staff.services import access_open
from tmc.testing import PASSWORD, SENDER, CommitCapture, Tenant, make_staff

NUMBER = "+447400123456"


@pytest.fixture(autouse=True)
def _fixtures_told_nobody_yet(tenant_a: Tenant, tenant_b: Tenant) -> None:
    """Creating the test organisations notified their managers; start clean."""
    Notification.objects.all().delete()


BODY = "Can you work Saturday? Reply YES or NO"


def _fail_login_five_times(tenant: Tenant) -> None:
    client = Client()
    for _ in range(5):
        client.post(
            reverse("identity:login"),
            {"username": tenant.user.username, "password": "wrong-password-1"},
        )


def _change_password(tenant: Tenant) -> None:
    tenant.client_for(tenant.user).post(
        reverse("identity:password_change"),
        {
            "current_password": PASSWORD,
            "new_password": "Fresh-Meadow-Lantern-42",
            "confirm": "Fresh-Meadow-Lantern-42",
        },
    )


def _request_reset(tenant: Tenant) -> None:
    Client().post(reverse("identity:password_reset"), {"email": tenant.user.email})


def _create_user(tenant: Tenant) -> None:
    user_create(
        organisation=tenant.organisation,
        username="acme-newcomer",
        email="newcomer@acme.example",
        password=PASSWORD,
        role=Role.USER,
        created_by=tenant.controller,
    )


def _remember_device(tenant: Tenant) -> None:
    Client().post(
        reverse("identity:login"),
        {"username": tenant.user.username, "password": PASSWORD, "remember": "on"},
    )


def _reply(tenant: Tenant) -> None:
    message_send(user=tenant.user, recipient=NUMBER, body=BODY)
    handset_reply(handset_number=NUMBER, to=SENDER, body="YES 07400123456")


def _spend_credit(tenant: Tenant) -> None:
    credits_debit(organisation=tenant.organisation, amount=60, reason="Campaign")


def _staff_access(tenant: Tenant) -> None:
    access_open(
        member=make_staff(1),
        organisation=tenant.organisation,
        reason="Ticket 4411: customer asked for help",
    )


@dataclass(frozen=True)
class Case:
    kind: str
    action: Callable[[Tenant], None]
    in_app: tuple[str, ...]  # roles with an in-app notice
    email: tuple[str, ...]  # roles emailed


MANAGERS = ("controller", "administrator")
ADMIN_AND_USER = ("administrator", "user")

CASES = [
    Case("user_created", _create_user, MANAGERS, MANAGERS),
    Case("password_reset_requested", _request_reset, MANAGERS, MANAGERS),
    Case("password_changed", _change_password, ADMIN_AND_USER, ADMIN_AND_USER),
    Case("account_locked", _fail_login_five_times, ("administrator",), ADMIN_AND_USER),
    Case("new_device", _remember_device, ("user",), ("user",)),
    Case("reply_received", _reply, ("user",), ()),
    Case("low_credit", _spend_credit, ("controller",), ("controller",)),
    Case("staff_access", _staff_access, ("controller",), ("controller",)),
]


def _emails_of(tenant: Tenant, roles: tuple[str, ...]) -> set[str]:
    return {getattr(tenant, role).email for role in roles}


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_each_notice_reaches_its_recipients_and_no_one_else(
    case: Case,
    tenant_a: Tenant,
    tenant_b: Tenant,
    mailoutbox: list[EmailMessage],
    committed: CommitCapture,
) -> None:
    with committed(execute=True):
        case.action(tenant_a)

    notices = Notification.objects.filter(kind=case.kind)
    told_in_app = set(notices.values_list("recipient__username", flat=True))
    expected = {getattr(tenant_a, role).username for role in case.in_app}
    assert told_in_app == expected
    assert not Notification.objects.exclude(kind=case.kind).exists()
    # The reset link and the newcomer's welcome are not notices.
    not_notices = {"TMC password reset", "Your TMC account acme-newcomer"}
    emailed = {
        address
        for email in mailoutbox
        if email.subject not in not_notices
        for address in email.to
    }
    assert emailed == _emails_of(tenant_a, case.email)
    assert not emailed & {
        tenant_b.controller.email,
        tenant_b.administrator.email,
        tenant_b.user.email,
    }


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_notices_never_carry_bodies_or_full_numbers(
    case: Case,
    tenant_a: Tenant,
    mailoutbox: list[EmailMessage],
    committed: CommitCapture,
) -> None:
    with committed(execute=True):
        case.action(tenant_a)

    texts = [n.title for n in Notification.objects.all()]
    for email in mailoutbox:
        texts.append(str(email.subject))
        texts.append(str(email.body))
        texts.extend(str(part) for part, _ in getattr(email, "alternatives", []))
    for text in texts:
        assert BODY not in text
        assert "YES 07400123456" not in text
        assert NUMBER not in text
        assert "7400123456" not in text.replace(" ", "")
        assert PASSWORD not in text


def test_a_reply_notice_names_the_sender_masked_and_links_the_message(
    tenant_a: Tenant,
) -> None:
    _reply(tenant_a)

    notice = Notification.objects.get(kind="reply_received")
    message = Message.objects.get()
    assert notice.title == "reply from +44 7400 1•••56"
    assert notice.link == reverse("messaging:detail", kwargs={"message_id": message.pk})


def test_a_rolled_back_action_notifies_nobody(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    from django.db import transaction

    def create_then_fail() -> None:
        with transaction.atomic():
            _create_user(tenant_a)
            raise RuntimeError("the change fails after the notice was written")

    with committed(execute=True), pytest.raises(RuntimeError):
        create_then_fail()

    assert not Notification.objects.exists()
    assert mailoutbox == []


def test_one_fall_below_the_alert_level_sends_one_notice(tenant_a: Tenant) -> None:
    for _ in range(3):
        credits_debit(organisation=tenant_a.organisation, amount=20, reason="Send")

    assert Notification.objects.filter(kind="low_credit").count() == 1


def test_topping_up_rearms_the_low_credit_alert(tenant_a: Tenant) -> None:
    from tmc.accounts.services import credits_add

    credits_debit(organisation=tenant_a.organisation, amount=60, reason="Send")
    credits_add(organisation=tenant_a.organisation, amount=500, reason="Top-up")
    credits_debit(organisation=tenant_a.organisation, amount=520, reason="Send")

    assert Notification.objects.filter(kind="low_credit").count() == 2


def test_an_administrators_own_lockout_is_told_to_the_controllers(
    tenant_a: Tenant, mailoutbox: list[EmailMessage], committed: CommitCapture
) -> None:
    """Someone other than the locked person always hears of it."""
    client = Client()
    with committed(execute=True):
        for _ in range(5):
            client.post(
                reverse("identity:login"),
                {"username": tenant_a.administrator.username, "password": "nope-42"},
            )

    told = Notification.objects.filter(kind="account_locked")
    assert set(told.values_list("recipient", flat=True)) == {tenant_a.controller.pk}


def test_inactive_people_are_not_told(tenant_a: Tenant) -> None:
    User.objects.filter(pk=tenant_a.administrator.pk).update(is_active=False)

    _create_user(tenant_a)

    told = Notification.objects.filter(kind="user_created")
    assert set(told.values_list("recipient", flat=True)) == {tenant_a.controller.pk}
