"""The staff console: levels, forced password change, accountable access."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry, Organisation, Package
from tmc.audit.models import Event
from tmc.identity.models import User
from tmc.lib.security_policy import PRESETS
from tmc.messaging.services import message_send
from tmc.staff.models import StaffAccess, StaffMember, StaffSession
from tmc.staff.services import access_open, package_change
from tmc.testing import (
    PASSWORD,
    STAFF_PASSWORD,
    CommitCapture,
    Tenant,
    make_staff,
    staff_client_for,
)


def _open(
    client: Client, organisation: Organisation, reason: str = "Ticket 4412"
) -> Any:
    return client.post(
        reverse("staff:access", args=[organisation.pk]), {"reason": reason}
    )


# --- separate log-in --------------------------------------------------------------


def test_client_credentials_do_not_open_the_staff_console(
    client: Client, tenant_a: Tenant
) -> None:
    """Staff are separate from client users, with their own log-in."""
    response = client.post(
        reverse("staff:login"),
        {"username": tenant_a.controller.username, "password": PASSWORD},
    )

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert client.get(reverse("staff:home")).status_code == 302


def test_staff_cookie_is_limited_to_staff_pages(staff: dict[int, Any]) -> None:
    client = Client()
    response = client.post(
        reverse("staff:login"),
        {"username": staff[1].username, "password": STAFF_PASSWORD},
    )

    cookie = response.cookies["tmc_staff"]
    assert cookie["path"] == "/staff/"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"
    assert StaffSession.objects.get().token_hash != cookie.value


def test_a_staff_session_is_not_a_client_session(staff: dict[int, Any]) -> None:
    client = staff_client_for(staff[4])

    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_the_second_password_comes_before_any_staff_page(
    staff: dict[int, Any],
) -> None:
    """Staff have a second password too."""
    client = Client()
    client.post(
        reverse("staff:login"),
        {"username": staff[1].username, "password": STAFF_PASSWORD},
    )

    home = client.get(reverse("staff:home"))

    assert home.status_code == 302
    assert home["Location"] == reverse("staff:second_password")


def test_five_wrong_passwords_lock_a_staff_account(staff: dict[int, Any]) -> None:
    client = Client()
    for _ in range(5):
        client.post(
            reverse("staff:login"),
            {"username": staff[2].username, "password": "Wrong-passw0rd"},
        )

    right = client.post(
        reverse("staff:login"),
        {"username": staff[2].username, "password": STAFF_PASSWORD},
    )

    assert b"locked" in right.content
    assert StaffMember.objects.get(pk=staff[2].pk).locked_at is not None


def test_an_idle_staff_session_ends(staff: dict[int, Any]) -> None:
    """The 20-minute idle time-out applies to staff as well."""
    client = staff_client_for(staff[1])
    StaffSession.objects.update(last_activity_at=timezone.now() - timedelta(minutes=21))

    response = client.get(reverse("staff:home"))

    assert response.status_code == 302
    assert response["Location"] == reverse("staff:login")


# --- levels ------------------------------------------------------------------------


def test_levels_two_and_up_must_change_their_password_after_30_days(
    staff: dict[int, Any],
) -> None:
    """Policy: users at level 2 and above change their password monthly."""
    old = timezone.now() - timedelta(days=31)
    StaffMember.objects.update(password_changed_at=old)
    level1 = staff_client_for(staff[1])
    level2 = staff_client_for(staff[2])

    assert level1.get(reverse("staff:home")).status_code == 200
    blocked = level2.get(reverse("staff:home"))
    assert blocked["Location"] == reverse("staff:password")
    assert level2.get(reverse("staff:levels"))["Location"] == reverse("staff:password")
    assert level2.get(reverse("staff:password")).status_code == 200

    changed = level2.post(
        reverse("staff:password"),
        {"current_password": STAFF_PASSWORD, "new_password": "Fresh-Staff-9753"},
    )
    assert changed.status_code == 302
    assert level2.get(reverse("staff:home")).status_code == 200


def _password_age(member: StaffMember, days: int) -> None:
    StaffMember.objects.filter(pk=member.pk).update(
        password_changed_at=timezone.now() - timedelta(days=days)
    )


def _forced(client: Client) -> bool:
    response = client.get(reverse("staff:home"))
    if response.status_code == 200:
        return False
    assert response["Location"] == reverse("staff:password")
    return True


@pytest.mark.parametrize("level", [2, 3, 4])
def test_a_password_29_days_old_is_fine_and_31_days_old_is_forced(
    staff: dict[int, Any], level: int
) -> None:
    """Levels 2 and above change their password every 30 days: the boundary."""
    member = staff[level]
    client = staff_client_for(member)

    _password_age(member, 29)
    assert not _forced(client)
    _password_age(member, 31)
    assert _forced(client)


def test_level_one_is_never_forced_to_change_the_password(
    staff: dict[int, Any], settings: Any
) -> None:
    """Only levels 2 and above have the maximum age."""
    client = staff_client_for(staff[1])

    for days in (31, 3650):
        _password_age(staff[1], days)
        assert not _forced(client)
    settings.TMC_SECURITY_POLICY = dataclasses.replace(
        settings.TMC_SECURITY_POLICY, staff_password_max_age_days=1
    )
    assert not _forced(client)


def test_the_password_age_is_configurable_and_the_asvs_preset_has_none(
    staff: dict[int, Any], settings: Any
) -> None:
    """The 30 days are the policy's value; the asvs preset forces no change."""
    client = staff_client_for(staff[2])
    _password_age(staff[2], 8)
    assert not _forced(client)

    settings.TMC_SECURITY_POLICY = dataclasses.replace(
        settings.TMC_SECURITY_POLICY, staff_password_max_age_days=7
    )
    assert _forced(client)

    settings.TMC_SECURITY_POLICY = PRESETS["asvs"]
    _password_age(staff[2], 3650)
    assert not _forced(client)


def _policy_from_environment(**variables: str) -> str:
    """The staff password age the settings read from ``variables``."""
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.TMC_SECURITY_POLICY.staff_password_max_age_days)"
    )
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"TMC_SECURITY_PRESET", "TMC_STAFF_PASSWORD_MAX_AGE_DAYS"}
    }
    done = subprocess.run(  # nosec B603
        [sys.executable, "-c", script],
        env={**environment, "DJANGO_SETTINGS_MODULE": "tmc.settings", **variables},
        capture_output=True,
        text=True,
        check=False,
    )
    # The answer, or the last line of the error that stopped the settings.
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def test_tmc_staff_password_max_age_days_sets_the_age() -> None:
    """TMC_STAFF_PASSWORD_MAX_AGE_DAYS feeds the policy; a bad value stops."""
    assert _policy_from_environment() == "30"
    assert _policy_from_environment(TMC_STAFF_PASSWORD_MAX_AGE_DAYS="45") == "45"
    assert (
        _policy_from_environment(
            TMC_SECURITY_PRESET="asvs", TMC_STAFF_PASSWORD_MAX_AGE_DAYS="45"
        )
        == "None"
    )
    assert "must be at least 1" in _policy_from_environment(
        TMC_STAFF_PASSWORD_MAX_AGE_DAYS="0"
    )


def test_a_wrong_current_password_counts_towards_the_lockout(
    staff: dict[int, Any],
) -> None:
    """The change-password form cannot be used to guess without limit.

    Each wrong current password counts as a failed log-in, as on the
    client forms; the fifth locks the account and ends the session.
    """
    member = staff[2]
    client = staff_client_for(member)
    url = reverse("staff:password")

    for attempt in range(1, 5):
        response = client.post(
            url,
            {"current_password": "Wrong-passw0rd", "new_password": "Fresh-Staff-9753"},
        )
        assert response.status_code == 200
        assert "That is not your password." in response.content.decode()
        assert StaffMember.objects.get(pk=member.pk).failed_login_attempts == attempt
    client.post(
        url, {"current_password": "Wrong-passw0rd", "new_password": "Fresh-Staff-9753"}
    )

    locked = StaffMember.objects.get(pk=member.pk)
    assert locked.locked_at is not None
    assert locked.failed_login_attempts == 5
    assert check_password(STAFF_PASSWORD, locked.password)
    assert Event.objects.filter(action="staff.locked").count() == 1
    assert client.get(reverse("staff:home"))["Location"] == reverse("staff:login")
    again = Client().post(
        reverse("staff:login"),
        {"username": member.username, "password": STAFF_PASSWORD},
    )
    assert b"locked" in again.content


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("staff:credits", 2),
        ("staff:package", 2),
        ("staff:suspend", 3),
    ],
)
def test_each_level_is_refused_what_is_above_it(
    staff: dict[int, Any], tenant_a: Tenant, name: str, minimum: int
) -> None:
    """A member below the level gets 403 by direct URL; at the level, through."""
    organisation = tenant_a.organisation
    for level in (1, 2, 3, 4):
        client = staff_client_for(staff[level])
        _open(client, organisation)
        response = client.post(
            reverse(name, args=[organisation.pk]),
            {"amount": "1", "reason": "Goodwill credit", "suspend": "0"},
        )
        expected = 403 if level < minimum else 302
        assert response.status_code == expected, (name, level)


def test_only_level_four_manages_staff(staff: dict[int, Any]) -> None:
    for level in (1, 2, 3):
        client = staff_client_for(staff[level])
        assert client.get(reverse("staff:members")).status_code == 403
        assert (
            client.post(reverse("staff:member_level", args=[staff[1].pk]), {"level": 4})
        ).status_code == 403

    top = staff_client_for(staff[4])
    created = top.post(
        reverse("staff:members"),
        {
            "username": "new-agent",
            "full_name": "New Agent",
            "email": "",
            "level": 1,
            "password": "Agent-Pass-8642",
        },
    )
    assert created.status_code == 302
    assert StaffMember.objects.get(username="new-agent").level == 1


def test_nobody_changes_their_own_level(staff: dict[int, Any]) -> None:
    top = staff_client_for(staff[4])

    response = top.post(reverse("staff:member_level", args=[staff[4].pk]), {"level": 1})

    assert response.status_code == 403
    assert StaffMember.objects.get(pk=staff[4].pk).level == 4


def test_level_four_sets_another_members_level(staff: dict[int, Any]) -> None:
    top = staff_client_for(staff[4])

    top.post(reverse("staff:member_level", args=[staff[1].pk]), {"level": 3})

    assert StaffMember.objects.get(pk=staff[1].pk).level == 3
    assert Event.objects.filter(action="staff.level_changed").exists()


def test_the_levels_page_shows_the_table(staff: dict[int, Any]) -> None:
    page = staff_client_for(staff[1]).get(reverse("staff:levels"))

    assert b"adjust credits" in page.content.lower()
    assert b"4: Extra super user" in page.content


# --- accountable access -------------------------------------------------------------


def test_no_reason_no_access(staff: dict[int, Any], tenant_a: Tenant) -> None:
    """Opening a client's data requires a stated reason."""
    client = staff_client_for(staff[1])
    organisation_url = reverse("staff:organisation", args=[tenant_a.organisation.pk])

    first = client.get(organisation_url)
    assert first["Location"] == reverse("staff:access", args=[tenant_a.organisation.pk])
    blank = _open(client, tenant_a.organisation, reason="  ")
    short = _open(client, tenant_a.organisation, reason="abc")

    assert blank.status_code == short.status_code == 200
    assert not StaffAccess.objects.exists()
    assert client.get(organisation_url).status_code == 302


def test_a_reason_opens_30_minutes_for_that_organisation_only(
    staff: dict[int, Any], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    client = staff_client_for(staff[1])

    _open(client, tenant_a.organisation)

    window = StaffAccess.objects.get()
    assert (
        timedelta(minutes=29)
        < window.expires_at - timezone.now()
        <= timedelta(minutes=30)
    )
    own = client.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))
    other = client.get(reverse("staff:organisation", args=[tenant_b.organisation.pk]))
    assert own.status_code == 200
    assert other.status_code == 302


def test_after_30_minutes_a_new_reason_is_needed(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    client = staff_client_for(staff[2])
    _open(client, tenant_a.organisation)
    StaffAccess.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    page = client.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))
    change = client.post(
        reverse("staff:credits", args=[tenant_a.organisation.pk]),
        {"amount": "50", "reason": "Goodwill credit"},
    )

    assert page["Location"] == reverse("staff:access", args=[tenant_a.organisation.pk])
    assert change["Location"] == reverse(
        "staff:access", args=[tenant_a.organisation.pk]
    )
    assert Organisation.objects.get(pk=tenant_a.organisation.pk).credit_balance == 100


def test_pages_and_changes_in_the_window_are_logged_with_the_reason(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    client = staff_client_for(staff[2])
    _open(client, tenant_a.organisation, reason="Ticket 4412: refund")
    client.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))
    client.post(
        reverse("staff:credits", args=[tenant_a.organisation.pk]),
        {"amount": "25", "reason": "Refund for outage"},
    )

    events = Event.objects.filter(
        organisation=tenant_a.organisation, action__startswith="staff."
    )
    actions = set(events.values_list("action", flat=True))
    assert {"staff.access_opened", "staff.page_viewed", "staff.credits_adjusted"} <= (
        actions
    )
    for event in events:
        assert event.details["reason"] == "Ticket 4412: refund"
        assert event.details["staff_level"] == 2
        assert "Level 2 Person" in event.actor_label
    entry = CreditLedgerEntry.objects.filter(
        organisation=tenant_a.organisation, reason__startswith="Refund for outage"
    ).get()
    assert entry.amount == 25
    assert "Refund for outage" in entry.reason


def test_the_controller_sees_the_staff_access_and_is_told(
    staff: dict[int, Any],
    tenant_a: Tenant,
    committed: CommitCapture,
    mailoutbox: list[Any],
) -> None:
    """Controllers see, in their own log, who accessed their account and why."""
    client = staff_client_for(staff[3])
    with committed(execute=True):
        _open(client, tenant_a.organisation, reason="Ticket 9001")
    client.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))

    log = tenant_a.client_for(tenant_a.controller, second_factor=True).get(
        reverse("audit:activity")
    )

    assert b"Level 3 Person (TMC staff, level 3)" in log.content
    assert b"staff.access_opened" in log.content
    assert b"Ticket 9001" in log.content
    told = [m for m in mailoutbox if "opened" in m.subject]
    assert [m.to for m in told] == [[tenant_a.controller.email]]


def test_the_controller_sees_what_staff_did_in_the_window(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    """Controllers see in their own log each page staff opened and each change."""
    client = staff_client_for(staff[2])
    _open(client, tenant_a.organisation, reason="Ticket 7070: billing")
    client.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))
    client.post(
        reverse("staff:credits", args=[tenant_a.organisation.pk]),
        {"amount": "15", "reason": "Refund for outage"},
    )
    controller = tenant_a.client_for(tenant_a.controller, second_factor=True)

    log = controller.get(reverse("audit:activity")).content.decode()

    rows = [row for row in log.split("<tr>") if "(TMC staff, level 2)" in row]
    assert len(rows) == 3
    for row, action in zip(
        rows,
        ["staff.credits_adjusted", "staff.page_viewed", "staff.access_opened"],
        strict=True,
    ):
        assert f"<td>{action}</td>" in row
        assert "<td>staff:Level 2 Person (TMC staff, level 2)</td>" in row
        assert "<td>Ticket 7070: billing</td>" in row


def test_a_full_number_view_is_itself_logged(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    message = message_send(user=tenant_a.user, recipient="07400 123456", body="Hi")
    level2 = staff_client_for(staff[2])
    level3 = staff_client_for(staff[3])
    for client in (level2, level3):
        _open(client, tenant_a.organisation)
    url = reverse("staff:message_number", args=[tenant_a.organisation.pk, message.pk])

    page = level3.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))
    assert b"+447400123456" not in page.content
    assert b"+44 7400 123456" not in page.content
    assert level2.post(url).status_code == 403
    shown = level3.post(url)

    assert b"+44 7400 123456" in shown.content
    viewed = Event.objects.get(action="staff.full_number_viewed")
    assert viewed.organisation == tenant_a.organisation
    assert viewed.target_id == str(message.pk)


def test_level_three_unlocks_a_client_user(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(
        locked_at=timezone.now(), failed_login_attempts=5
    )
    level2 = staff_client_for(staff[2])
    level3 = staff_client_for(staff[3])
    for client in (level2, level3):
        _open(client, tenant_a.organisation)
    url = reverse(
        "staff:user_unlock", args=[tenant_a.organisation.pk, tenant_a.user.pk]
    )

    assert level2.post(url).status_code == 403
    assert level3.post(url).status_code == 302

    assert User.objects.get(pk=tenant_a.user.pk).locked_at is None
    event = Event.objects.get(action="user.unlocked")
    assert event.organisation == tenant_a.organisation
    assert "TMC staff, level 3" in event.actor_label


def test_a_suspended_organisation_cannot_log_in(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    signed_in = tenant_a.client_for(tenant_a.user)
    client = staff_client_for(staff[3])
    _open(client, tenant_a.organisation)

    client.post(
        reverse("staff:suspend", args=[tenant_a.organisation.pk]), {"suspend": "1"}
    )

    assert signed_in.get(reverse("accounts:dashboard")).status_code == 302
    refused = Client().post(
        reverse("identity:login"),
        {"username": tenant_a.user.username, "password": PASSWORD},
    )
    assert refused.status_code == 200
    assert Event.objects.filter(action="organisation.suspended").exists()


def test_a_package_change_needs_a_reason_and_records_it(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    """Level 2 changes packages; every change states a reason, kept with it.

    A package change moves no credits, so the reason is kept in the
    organisation's activity log and the ledger is left as it was.
    """
    package = Package.objects.create(name="Business 1000", credits=1000)
    client = staff_client_for(staff[2])
    _open(client, tenant_a.organisation, reason="Ticket 5150")
    url = reverse("staff:package", args=[tenant_a.organisation.pk])
    ledger_before = CreditLedgerEntry.objects.filter(
        organisation=tenant_a.organisation
    ).count()

    missing = client.post(url, {"package": package.pk})
    blank = client.post(url, {"package": package.pk, "reason": "   "})

    for refused in (missing, blank):
        assert refused.status_code == 200
        assert "Say why the package changes." in refused.content.decode()
    assert Organisation.objects.get(pk=tenant_a.organisation.pk).package is None
    assert not Event.objects.filter(action="staff.package_changed").exists()

    changed = client.post(
        url, {"package": package.pk, "reason": "Customer ordered Business 1000"}
    )

    assert changed.status_code == 302
    organisation = Organisation.objects.get(pk=tenant_a.organisation.pk)
    assert organisation.package == package
    assert organisation.credit_balance == 100
    event = Event.objects.get(action="staff.package_changed")
    assert event.organisation == tenant_a.organisation
    assert event.details["from"] is None
    assert event.details["to"] == "Business 1000"
    assert event.details["note"] == "Customer ordered Business 1000"
    assert event.details["reason"] == "Ticket 5150"
    assert "Level 2 Person" in event.actor_label
    assert (
        CreditLedgerEntry.objects.filter(organisation=organisation).count()
        == ledger_before
    )


def test_a_package_change_without_a_reason_is_refused_by_the_service(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    """The rule holds below the form too: the service refuses a short reason."""
    access = access_open(
        member=staff[2], organisation=tenant_a.organisation, reason="Ticket 5150"
    )

    with pytest.raises(ValidationError) as refused:
        package_change(access=access, package=None, reason=" ok ", request=None)

    assert "reason" in refused.value.message_dict
    assert not Event.objects.filter(action="staff.package_changed").exists()


def test_staff_create_from_the_command_line(db: None) -> None:
    from io import StringIO
    from unittest import mock

    from django.core.management import call_command

    out = StringIO()
    with mock.patch("sys.stdin", StringIO("First-Staff-Pass-1\n")):
        call_command(
            "staff", "create", "--username", "first", "--level", "4", stdout=out
        )

    assert "at level 4" in out.getvalue()
    assert StaffMember.objects.get(username="first").level == 4


def test_make_staff_fixture_members_can_log_in(db: None) -> None:
    member = make_staff(1)

    assert staff_client_for(member).get(reverse("staff:home")).status_code == 200


def test_reply_numbers_are_managed_from_level_three(
    staff: dict[int, Any], tenant_a: Tenant
) -> None:
    from tmc.boomerang.models import VirtualNumber

    for level in (1, 2):
        client = staff_client_for(staff[level])
        assert client.get(reverse("staff:numbers")).status_code == 403
        refused = client.post(reverse("staff:numbers"), {"numbers": "+447400900001"})
        assert refused.status_code == 403
    assert not VirtualNumber.objects.exists()

    client = staff_client_for(staff[3])
    added = client.post(
        reverse("staff:numbers"),
        {"numbers": "+447400900001\n+447400900002", "organisation": ""},
    )
    dedicated = client.post(
        reverse("staff:numbers"),
        {"numbers": "+447400900009", "organisation": tenant_a.organisation.pk},
    )
    shared = VirtualNumber.objects.get(number="+447400900002")
    retired = client.post(reverse("staff:number_retire", args=[shared.pk]))
    bad = client.post(reverse("staff:numbers"), {"numbers": "not a number"})

    assert (added.status_code, dedicated.status_code, retired.status_code) == (
        302,
        302,
        302,
    )
    assert VirtualNumber.objects.get(number="+447400900009").organisation == (
        tenant_a.organisation
    )
    shared.refresh_from_db()
    assert shared.retired_at is not None
    assert 'id="id_numbers_error"' in bad.content.decode()
    assert VirtualNumber.objects.count() == 3
    event = Event.objects.filter(action="numbers.added").first()
    assert event is not None
    assert event.actor_label == f"staff:{staff[3].label}"


def test_unmatched_replies_show_numbers_in_full_only_from_level_three(
    staff: dict[int, Any], db: None
) -> None:
    from tmc.gateways.services import inbound_receive

    inbound_receive(
        gateway="simulator",
        sender="+447400123456",
        recipient="+447400900001",
        body="Who is this?",
    )

    low = staff_client_for(staff[1]).get(reverse("staff:unmatched")).content.decode()
    high = staff_client_for(staff[3]).get(reverse("staff:unmatched")).content.decode()

    assert "Who is this?" in low
    assert "+44 7400 123456" not in low
    assert "+44 7400 1•••56" in low
    assert "+44 7400 123456" in high


def test_a_reply_still_waiting_to_be_matched_is_not_in_the_unmatched_inbox(
    staff: dict[int, Any], db: None
) -> None:
    from tmc.gateways.inbound import replies_match_pending
    from tmc.gateways.services import inbound_accept

    inbound_accept(
        gateway="http",
        sender="+447400123456",
        recipient="+447400900001",
        body="Who is this?",
    )
    client = staff_client_for(staff[1])

    before = client.get(reverse("staff:unmatched")).content.decode()
    replies_match_pending()
    after = client.get(reverse("staff:unmatched")).content.decode()

    assert "Who is this?" not in before
    assert "Who is this?" in after


def test_staff_see_the_organisations_activity_log_and_their_viewing_is_on_it(
    staff: dict[int, Any], tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """Staff read an organisation's whole log on its page, and opening the
    page is itself recorded in that log; another organisation's events stay
    off it."""
    client = staff_client_for(staff[1])
    _open(client, tenant_a.organisation, reason="Ticket 5150")

    page = client.get(reverse("staff:organisation", args=[tenant_a.organisation.pk]))

    activity = page.content.decode().split('data-testid="activity"')[1]
    activity = activity.split("</table>")[0]
    assert "staff.access_opened" in activity
    assert "staff.page_viewed" in activity
    assert f"user {tenant_a.user.pk}<" in activity
    assert f"user {tenant_b.user.pk}<" not in activity
    assert Event.objects.filter(
        organisation=tenant_a.organisation, action="staff.page_viewed"
    ).exists()
