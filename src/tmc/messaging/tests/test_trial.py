"""The free trial: credits, verified numbers only, the notice, and its end."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from django.db.models import Sum
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry, Organisation, Package
from tmc.accounts.services import account_create, credits_add
from tmc.audit.models import Event
from tmc.boomerang.services import numbers_add, question_send
from tmc.contacts.services import opt_out_add_by_user
from tmc.lib.segments import count_segments
from tmc.messaging.campaigns import Removal, campaign_preview, campaign_send
from tmc.messaging.models import Message, Schedule, VerifiedNumber
from tmc.messaging.scheduling import When, schedule_create
from tmc.messaging.services import message_compose, message_send
from tmc.messaging.trial import (
    LOCKED,
    NOT_VERIFIED,
    NOT_VERIFIED_REASON,
    verified_number_add,
    verified_number_confirm,
)
from tmc.staff.services import access_open, credits_adjust, package_change
from tmc.testing import PASSWORD, Tenant, make_tenant

NOTICE = " - Sent with a TMC free trial"
VERIFIED = "+447400111222"
STRANGER = "+447400333444"


@pytest.fixture
def trial(db: None) -> Tenant:
    return make_tenant("Trialco", credits=0, trial=True)


def _code_sent_to(tenant: Tenant) -> str:
    """The code in the latest text the organisation sent: what the phone got."""
    text = Message.objects.filter(organisation=tenant.organisation).first()
    assert text is not None
    found = re.search(r"\b(\d{6})\b", text.body)
    assert found is not None
    return found.group(1)


def _verify(tenant: Tenant, number: str) -> VerifiedNumber:
    verified = verified_number_add(user=tenant.user, number=number)
    return verified_number_confirm(
        user=tenant.user, verified=verified, code=_code_sent_to(tenant)
    )


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# --- sign-up -------------------------------------------------------------------


@override_settings(TMC_TRIAL_CREDITS=25)
def test_an_account_without_a_package_starts_on_trial_with_trial_credits(
    db: None,
) -> None:
    organisation, _ = account_create(
        name="New Co",
        controller_username="newco",
        controller_email="c@newco.example",
        controller_password=PASSWORD,
    )

    organisation.refresh_from_db()
    assert organisation.is_trial
    assert organisation.credit_balance == 25
    ledger = CreditLedgerEntry.objects.filter(organisation=organisation)
    assert ledger.aggregate(total=Sum("amount"))["total"] == 25
    assert ledger.get().reason == "Trial credits"


def test_an_account_opened_with_a_package_is_not_on_trial(db: None) -> None:
    package = Package.objects.create(name="Starter", credits=500)

    organisation, _ = account_create(
        name="Paid Co",
        controller_username="paidco",
        controller_email="c@paidco.example",
        controller_password=PASSWORD,
        package=package,
    )

    organisation.refresh_from_db()
    assert not organisation.is_trial
    assert organisation.credit_balance == 500
    assert not CreditLedgerEntry.objects.filter(reason="Trial credits").exists()


# --- unverified numbers are refused on every path ------------------------------


def test_a_one_to_one_text_to_an_unverified_number_is_refused(trial: Tenant) -> None:
    credits_add(organisation=trial.organisation, amount=10, reason="Test")

    with pytest.raises(ValidationError) as refused:
        message_send(user=trial.user, recipient=STRANGER, body="Hello")

    assert refused.value.message_dict == {"recipient": [NOT_VERIFIED]}
    assert not Message.objects.filter(organisation=trial.organisation).exists()


def test_the_compose_page_shows_the_refusal_beside_the_number(trial: Tenant) -> None:
    client = trial.client_for(trial.user)

    response = client.post(
        reverse("messaging:compose"),
        {"recipient": STRANGER, "sender": "AcmeAlerts", "body": "Hello"},
    )

    assert response.status_code == 200
    assert NOT_VERIFIED.encode() in response.content.replace(b"&#x27;", b"'")


def test_a_verified_number_can_be_texted(trial: Tenant) -> None:
    _verify(trial, VERIFIED)

    message = message_send(user=trial.user, recipient=VERIFIED, body="Hello")

    assert message.recipient == VERIFIED


def test_a_campaign_removes_unverified_numbers_with_the_reason(
    trial: Tenant,
) -> None:
    _verify(trial, VERIFIED)
    numbers = f"{VERIFIED}\n{STRANGER}"

    preview = campaign_preview(user=trial.controller, numbers_text=numbers, body="Hi")

    assert preview.recipients == (VERIFIED,)
    (removed,) = preview.removed
    assert (removed.reason, removed.line, removed.number, removed.why) == (
        Removal.NOT_VERIFIED,
        2,
        STRANGER,
        NOT_VERIFIED_REASON,
    )


def test_a_campaign_to_unverified_numbers_only_is_refused(trial: Tenant) -> None:
    with pytest.raises(ValidationError) as refused:
        campaign_send(user=trial.controller, numbers_text=STRANGER, body="Hi")

    assert "numbers" in refused.value.message_dict
    assert not Message.objects.filter(organisation=trial.organisation).exists()


def test_a_boomerang_question_to_an_unverified_number_is_refused(
    trial: Tenant,
) -> None:
    numbers_add(numbers=["+447400900001"])

    with pytest.raises(ValidationError) as refused:
        question_send(user=trial.user, recipient=STRANGER, body="Coming? Y/N")

    assert refused.value.message_dict == {"recipient": [NOT_VERIFIED]}


@pytest.mark.parametrize(("single", "field"), [(True, "recipient"), (False, "numbers")])
def test_a_scheduled_send_to_an_unverified_number_is_refused(
    trial: Tenant, single: bool, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        schedule_create(
            user=trial.controller,
            when=When(
                repeat=Schedule.Repeat.ONCE,
                run_at=timezone.now() + timedelta(days=1),
            ),
            numbers_text=STRANGER,
            body="Later",
            single=single,
        )

    assert refused.value.message_dict[field] == [NOT_VERIFIED]
    assert not Schedule.objects.exists()


def test_organisations_off_trial_text_any_number(tenant_a: Tenant) -> None:
    message = message_send(user=tenant_a.user, recipient=STRANGER, body="Hello")

    assert message.body == "Hello"


# --- verification --------------------------------------------------------------


def test_the_dashboard_and_compose_page_say_so_on_trial_only(
    trial: Tenant, tenant_a: Tenant
) -> None:
    on_trial = trial.client_for(trial.user)
    paying = tenant_a.client_for(tenant_a.user)

    for page in (reverse("accounts:dashboard"), reverse("messaging:compose")):
        assert b'data-testid="trial"' in on_trial.get(page).content
        assert b'data-testid="trial"' not in paying.get(page).content


def test_the_code_text_is_free_and_the_right_code_verifies(trial: Tenant) -> None:
    verified = verified_number_add(user=trial.user, number="07400 111222")

    text = Message.objects.get(organisation=trial.organisation)
    assert (text.recipient, text.credits) == (VERIFIED, 0)
    assert NOTICE not in text.body
    trial.organisation.refresh_from_db()
    assert trial.organisation.credit_balance == 20  # the trial credits, untouched
    assert _code_sent_to(trial) not in verified.code_hash

    verified_number_confirm(
        user=trial.user, verified=verified, code=_code_sent_to(trial)
    )

    verified.refresh_from_db()
    assert verified.is_verified
    assert verified.number == VERIFIED
    assert Event.objects.filter(action="trial.number_verified").exists()


def test_five_wrong_codes_lock_the_number_even_against_the_right_one(
    trial: Tenant,
) -> None:
    verified = verified_number_add(user=trial.user, number=VERIFIED)
    code = _code_sent_to(trial)

    for _ in range(5):
        with pytest.raises(ValidationError):
            verified_number_confirm(
                user=trial.user, verified=verified, code=_wrong(code)
            )

    with pytest.raises(ValidationError) as refused:
        verified_number_confirm(user=trial.user, verified=verified, code=code)
    assert refused.value.message_dict == {"code": [LOCKED]}
    with pytest.raises(ValidationError):
        verified_number_add(user=trial.user, number=VERIFIED)
    verified.refresh_from_db()
    assert (verified.attempts, verified.is_verified) == (5, False)


def test_a_new_code_waits_a_minute_and_replaces_the_old_one(trial: Tenant) -> None:
    verified = verified_number_add(user=trial.user, number=VERIFIED)
    first = _code_sent_to(trial)

    with pytest.raises(ValidationError):
        verified_number_add(user=trial.user, number=VERIFIED)
    VerifiedNumber.objects.filter(pk=verified.pk).update(
        code_sent_at=timezone.now() - timedelta(minutes=2)
    )
    again = verified_number_add(user=trial.user, number=VERIFIED)

    assert again.pk == verified.pk
    assert Message.objects.filter(organisation=trial.organisation).count() == 2
    if _code_sent_to(trial) != first:
        with pytest.raises(ValidationError):
            verified_number_confirm(user=trial.user, verified=again, code=first)
    verified_number_confirm(user=trial.user, verified=again, code=_code_sent_to(trial))


def test_a_number_that_opted_out_gets_no_code(trial: Tenant) -> None:
    opt_out_add_by_user(user=trial.user, number=VERIFIED)

    with pytest.raises(ValidationError):
        verified_number_add(user=trial.user, number=VERIFIED)

    assert not Message.objects.filter(organisation=trial.organisation).exists()


@pytest.mark.django_db(transaction=True)
def test_wrong_codes_posted_at_once_count_each_and_stop_at_the_lock() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella", credits=0, trial=True)
    verified = verified_number_add(user=tenant.user, number=VERIFIED)
    wrong = _wrong(_code_sent_to(tenant))
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def guess() -> None:
        mine = VerifiedNumber.objects.get(pk=verified.pk)
        start.wait()
        try:
            verified_number_confirm(user=tenant.user, verified=mine, code=wrong)
            outcomes.append("verified")
        except ValidationError:
            outcomes.append("refused")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    verified.refresh_from_db()
    assert outcomes == ["refused"] * 8
    assert (verified.attempts, verified.is_verified) == (5, False)


def test_a_code_expires_after_fifteen_minutes(trial: Tenant) -> None:
    verified = verified_number_add(user=trial.user, number=VERIFIED)
    VerifiedNumber.objects.filter(pk=verified.pk).update(
        code_sent_at=timezone.now() - timedelta(minutes=15, seconds=1)
    )
    verified.refresh_from_db()

    with pytest.raises(ValidationError) as refused:
        verified_number_confirm(
            user=trial.user, verified=verified, code=_code_sent_to(trial)
        )

    assert "expired" in refused.value.messages[0]
    verified.refresh_from_db()
    assert not verified.is_verified


def test_the_pages_add_and_verify_a_number(trial: Tenant) -> None:
    client = trial.client_for(trial.user)

    response = client.post(reverse("accounts:verified_numbers"), {"number": VERIFIED})
    verified = VerifiedNumber.objects.get(organisation=trial.organisation)
    assert response["Location"] == reverse(
        "accounts:verified_number", kwargs={"number_id": verified.pk}
    )
    wrong = client.post(response["Location"], {"code": _wrong(_code_sent_to(trial))})
    assert wrong.status_code == 200
    right = client.post(response["Location"], {"code": _code_sent_to(trial)})

    assert right["Location"] == reverse("accounts:verified_numbers")
    verified.refresh_from_db()
    assert (verified.is_verified, verified.attempts) == (True, 1)


def test_another_organisations_verified_number_is_not_found(
    trial: Tenant, tenant_b: Tenant
) -> None:
    verified = verified_number_add(user=trial.user, number=VERIFIED)
    client: Client = tenant_b.client_for(tenant_b.user)
    url = reverse("accounts:verified_number", kwargs={"number_id": verified.pk})

    assert client.get(url).status_code == 404
    assert client.post(url, {"code": _code_sent_to(trial)}).status_code == 404
    verified.refresh_from_db()
    assert not verified.is_verified


# --- the notice ----------------------------------------------------------------


def test_the_notice_is_appended_and_counted(trial: Tenant) -> None:
    _verify(trial, VERIFIED)
    body = "a" * (160 - len(NOTICE))

    composed = message_compose(user=trial.user, recipient=VERIFIED, body=body + "b")
    message = message_send(user=trial.user, recipient=VERIFIED, body=body)

    assert composed.body == body + "b" + NOTICE
    assert composed.segments.parts == 2
    assert message.body == body + NOTICE
    assert message.parts == 1
    assert count_segments(message.body).characters == 160


def test_the_compose_counter_counts_the_notice(trial: Tenant) -> None:
    client = trial.client_for(trial.user)

    response = client.post(reverse("messaging:segments"), {"body": "Hello"})

    assert response.context["segments"].characters == len("Hello" + NOTICE)
    assert b'data-testid="trial-notice"' in response.content


def test_a_campaign_on_trial_carries_the_notice(trial: Tenant) -> None:
    _verify(trial, VERIFIED)
    credits_add(organisation=trial.organisation, amount=5, reason="Test")

    campaign = campaign_send(user=trial.controller, numbers_text=VERIFIED, body="Hi")

    assert campaign.body == "Hi" + NOTICE


# --- leaving the trial ---------------------------------------------------------


def test_a_package_change_by_staff_ends_the_trial(
    trial: Tenant, staff: dict[int, Any]
) -> None:
    package = Package.objects.create(name="Starter", credits=500)
    access = access_open(
        member=staff[2], organisation=trial.organisation, reason="Ticket 9001"
    )

    package_change(
        access=access, package=package, reason="Customer order", request=None
    )

    trial.organisation.refresh_from_db()
    assert not trial.organisation.is_trial
    event = Event.objects.get(action="staff.package_changed")
    assert event.details["trial_ended"] is True
    message = message_send(user=trial.user, recipient=STRANGER, body="Hi")
    assert message.body == "Hi"


def test_bought_credits_end_the_trial_and_a_goodwill_adjustment_does_not(
    trial: Tenant, staff: dict[int, Any]
) -> None:
    access = access_open(
        member=staff[2], organisation=trial.organisation, reason="Ticket 9002"
    )

    credits_adjust(access=access, amount=10, reason="Goodwill", request=None)
    assert Organisation.objects.get(pk=trial.organisation.pk).is_trial

    credits_adjust(
        access=access, amount=100, reason="Invoice 42", request=None, purchase=True
    )
    assert not Organisation.objects.get(pk=trial.organisation.pk).is_trial
    assert CreditLedgerEntry.objects.filter(
        organisation=trial.organisation, kind=CreditLedgerEntry.Kind.PURCHASE
    ).exists()
