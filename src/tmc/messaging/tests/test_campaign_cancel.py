"""Cancelling a campaign: unsent messages withdrawn, credits refunded once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection
from django.db.models import Sum

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.audit.models import Event
from tmc.gateways.simulator.models import SimulatedDelivery
from tmc.identity.models import User
from tmc.messaging import campaigns
from tmc.messaging.campaigns import (
    campaign_dispatch_batch,
    campaign_progress,
    campaign_send,
)
from tmc.messaging.cancelling import campaign_cancel
from tmc.messaging.models import Campaign, Message
from tmc.messaging.recovery import messages_expire
from tmc.messaging.scheduling import campaigns_release_held
from tmc.testing import Tenant, make_tenant


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    # The dispatchers each test runs are the only ones: none starts on commit.
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)


def _numbers(count: int) -> str:
    return "\n".join(f"07400 {n:06d}" for n in range(count))


def _balance(organisation: Organisation) -> int:
    return Organisation.objects.get(pk=organisation.pk).credit_balance


def _ledger_sum(organisation: Organisation) -> int:
    total = CreditLedgerEntry.objects.filter(organisation=organisation).aggregate(
        t=Sum("amount")
    )["t"]
    return int(total or 0)


def _refunds(campaign: Campaign) -> list[int]:
    return list(
        CreditLedgerEntry.objects.filter(
            kind=CreditLedgerEntry.Kind.REFUND,
            reason=f"Refund for campaign {campaign.pk} (cancelled)",
        ).values_list("amount", flat=True)
    )


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def test_a_campaign_held_for_quiet_hours_is_cancelled_and_refunded_in_full(
    tenant_a: Tenant,
) -> None:
    local = datetime.now(UTC).astimezone(tenant_a.organisation.zone)
    Organisation.objects.filter(pk=tenant_a.organisation.pk).update(
        quiet_start=(local - timedelta(hours=1)).time(),
        quiet_end=(local + timedelta(hours=1)).time(),
    )
    user = _fresh(tenant_a.user)
    before = _balance(tenant_a.organisation)
    campaign = campaign_send(user=user, numbers_text=_numbers(4), body="a" * 200)
    assert campaign.hold_until is not None
    assert _balance(tenant_a.organisation) == before - 8

    withdrawn = campaign_cancel(user=user, campaign=campaign)

    assert withdrawn == 4
    assert campaign.status == Campaign.Status.CANCELLED
    assert campaign.completed_at is not None
    assert set(Message.objects.values_list("status", flat=True)) == {"cancelled"}
    assert _balance(tenant_a.organisation) == before
    assert _ledger_sum(tenant_a.organisation) == before
    assert _refunds(campaign) == [8]
    event = Event.objects.get(action="campaign.cancelled")
    assert event.details["withdrawn"] == 4
    assert event.details["credits_refunded"] == 8
    # Neither the end of the quiet hours nor a dispatcher sends anything.
    assert campaigns_release_held(now=datetime.now(UTC) + timedelta(hours=2)) == 0
    assert campaign_dispatch_batch(campaign_id=campaign.pk) == 0
    assert messages_expire(now=datetime.now(UTC) + timedelta(days=30)) == 0
    assert not SimulatedDelivery.objects.exists()
    assert _balance(tenant_a.organisation) == before


def test_a_sending_campaign_keeps_what_went_and_refunds_the_rest(
    tenant_a: Tenant,
) -> None:
    before = _balance(tenant_a.organisation)
    campaign = campaign_send(user=tenant_a.user, numbers_text=_numbers(5), body="Hi")
    assert campaign_dispatch_batch(campaign_id=campaign.pk, size=2) == 2

    withdrawn = campaign_cancel(user=tenant_a.user, campaign=campaign)

    assert withdrawn == 3
    assert SimulatedDelivery.objects.count() == 2
    assert campaign_dispatch_batch(campaign_id=campaign.pk, size=2) == 0
    assert SimulatedDelivery.objects.count() == 2
    assert _balance(tenant_a.organisation) == before - 2
    assert _ledger_sum(tenant_a.organisation) == before - 2
    progress = campaign_progress(campaign=campaign)
    went = progress.submitted + progress.delivered
    assert (went, progress.cancelled, progress.queued) == (2, 3, 0)
    assert progress.percent == 100


def test_a_second_cancel_is_refused_and_refunds_nothing(tenant_a: Tenant) -> None:
    campaign = campaign_send(user=tenant_a.user, numbers_text=_numbers(3), body="Hi")
    campaign_cancel(user=tenant_a.user, campaign=campaign)
    balance = _balance(tenant_a.organisation)

    with pytest.raises(ValidationError):
        campaign_cancel(user=tenant_a.controller, campaign=campaign)

    assert _refunds(campaign) == [3]
    assert _balance(tenant_a.organisation) == balance
    assert Event.objects.filter(action="campaign.cancelled").count() == 1


def test_a_finished_campaign_cannot_be_cancelled(tenant_a: Tenant) -> None:
    campaign = campaign_send(user=tenant_a.user, numbers_text=_numbers(2), body="Hi")
    campaign_dispatch_batch(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE

    with pytest.raises(ValidationError):
        campaign_cancel(user=tenant_a.user, campaign=campaign)

    assert not CreditLedgerEntry.objects.filter(
        kind=CreditLedgerEntry.Kind.REFUND
    ).exists()


def test_only_the_author_or_a_manager_may_cancel(tenant_a: Tenant) -> None:
    campaign = campaign_send(
        user=tenant_a.administrator, numbers_text=_numbers(2), body="Hi"
    )
    page = f"/messages/campaigns/{campaign.pk}/"

    user_client = tenant_a.client_for(tenant_a.user)
    assert b'data-testid="campaign-cancel"' not in user_client.get(page).content
    assert user_client.post(f"{page}cancel/").status_code == 403
    with pytest.raises(PermissionDenied):
        campaign_cancel(user=tenant_a.user, campaign=campaign)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED

    controller = tenant_a.client_for(tenant_a.controller)
    assert b'data-testid="campaign-cancel"' in controller.get(page).content
    response = controller.post(f"{page}cancel/", follow=True)

    assert response.status_code == 200
    assert b"2 unsent messages withdrawn" in response.content
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert b'data-testid="campaign-cancel"' not in response.content


def test_another_organisation_cannot_cancel(tenant_a: Tenant, tenant_b: Tenant) -> None:
    campaign = campaign_send(user=tenant_a.user, numbers_text=_numbers(2), body="Hi")

    with pytest.raises(PermissionDenied):
        campaign_cancel(user=tenant_b.controller, campaign=campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.QUEUED


# --- the race with dispatch (PostgreSQL) ------------------------------------------


def _in_threads(*works: Any) -> None:
    start = threading.Barrier(len(works))

    def run(work: Any) -> None:
        try:
            start.wait()
            work()
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
@pytest.mark.django_db(transaction=True)
def test_cancel_racing_two_dispatchers_sends_no_withdrawn_message_nor_refunds_twice(
    delay: float,
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Hooli", credits=1000)
    campaign = campaign_send(user=tenant.user, numbers_text=_numbers(300), body="Hi")
    after_send = _balance(tenant.organisation)
    cancelled: list[int] = []

    def drain() -> None:
        while campaign_dispatch_batch(campaign_id=campaign.pk, size=2):
            pass

    def cancel() -> None:
        time.sleep(delay)
        user = User.objects.get(pk=tenant.user.pk)
        cancelled.append(campaign_cancel(user=user, campaign=campaign))

    _in_threads(drain, drain, cancel)

    statuses = dict(
        Message.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Sum("credits"))
        .values_list("status", "n")
    )
    withdrawn = statuses.get("cancelled", 0)
    sent = Message.objects.filter(
        campaign=campaign,
        status__in=[Message.Status.SUBMITTED, Message.Status.DELIVERED],
    ).values_list("pk", flat=True)
    assert set(statuses) <= {"cancelled", "submitted", "delivered"}
    assert cancelled == [withdrawn]
    # Every message that reached the simulator is one that was not withdrawn,
    # and each reached it once.
    received = [
        int(pk or 0)
        for pk in SimulatedDelivery.objects.values_list("message_id", flat=True)
    ]
    assert sorted(received) == sorted(sent)
    assert _refunds(campaign) == ([withdrawn] if withdrawn else [])
    organisation = Organisation.objects.get(pk=tenant.organisation.pk)
    assert organisation.credit_balance == after_send + withdrawn
    assert organisation.credit_balance == _ledger_sum(organisation)
