"""Dispatch through routes: failover, retries, refunds, expiry, reconciling."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections
from django.db.models import Sum
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.messaging.models import Campaign, Message
from tmc.messaging.recovery import (
    messages_expire,
    messages_reconcile,
    messages_retry_due,
)
from tmc.messaging.services import message_close, message_send, retry_delay
from tmc.routing.models import GatewayHealth
from tmc.routing.services import gateway_reset, route_set
from tmc.testing import CommitCapture, Tenant, make_tenant

NUMBER = "07400 123456"
E164 = "+447400123456"


def _balance(organisation: Organisation) -> int:
    organisation.refresh_from_db()
    return organisation.credit_balance


def _ledger_sum(organisation: Organisation) -> int:
    total = CreditLedgerEntry.objects.filter(organisation=organisation).aggregate(
        total=Sum("amount")
    )["total"]
    return int(total or 0)


def _refunds(message: Message) -> int:
    return CreditLedgerEntry.objects.filter(
        kind=CreditLedgerEntry.Kind.REFUND, reason=f"Refund for message {message.pk}"
    ).count()


def _send(tenant: Tenant, committed: CommitCapture, body: str = "Hi") -> Message:
    with committed(execute=True):
        message = message_send(user=tenant.user, recipient=NUMBER, body=body)
    message.refresh_from_db()
    return message


@pytest.fixture
def uk_route(db: None, settings: Any) -> None:
    settings.TMC_SIMULATOR_REPORT_DELAY = 3600  # reports stay out of the way
    route_set(prefix="+44", gateways=["simulator-a", "simulator-b"])


def test_a_gateway_that_is_down_fails_over_to_the_next(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-a"]

    first = _send(tenant_a, committed)
    second = _send(tenant_a, committed)

    assert (first.status, first.gateway) == (Message.Status.SUBMITTED, "simulator-b")
    assert (second.status, second.gateway) == (Message.Status.SUBMITTED, "simulator-b")
    health = GatewayHealth.objects.get(name="simulator-a")
    # The second message skipped it without trying: one failure only.
    assert health.total_failures == 1
    assert health.down_until is not None
    assert health.down_until > timezone.now()


def test_traffic_returns_to_the_first_gateway_once_it_is_back(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-a"]
    _send(tenant_a, committed)
    settings.TMC_SIMULATOR_DOWN = []
    gateway_reset(name="simulator-a")

    message = _send(tenant_a, committed)

    assert message.gateway == "simulator-a"


def test_a_gateway_at_its_throughput_limit_is_passed_over(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    settings.TMC_GATEWAY_RATES = {"simulator-a": 0.1}
    settings.TMC_THROUGHPUT_MAX_WAIT = 0.0

    first = _send(tenant_a, committed)
    second = _send(tenant_a, committed)

    assert [first.gateway, second.gateway] == ["simulator-a", "simulator-b"]
    assert not GatewayHealth.objects.exists()


def test_when_every_gateway_fails_for_now_the_message_waits_to_retry(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-a", "simulator-b"]
    settings.TMC_RETRY_BASE_SECONDS = 60
    before = timezone.now()

    message = _send(tenant_a, committed)

    assert message.status == Message.Status.RETRYING
    assert message.attempts == 1
    assert message.next_attempt_at is not None
    wait = message.next_attempt_at - before
    assert timedelta(seconds=30) <= wait <= timedelta(seconds=61)
    assert _balance(tenant_a.organisation) == 99  # still reserved

    settings.TMC_SIMULATOR_DOWN = []
    for name in ("simulator-a", "simulator-b"):
        gateway_reset(name=name)
    assert messages_retry_due() == 0  # not due yet
    with committed(execute=True):
        assert messages_retry_due(now=message.next_attempt_at) == 1

    message.refresh_from_db()
    assert message.status == Message.Status.SUBMITTED
    assert SimulatedDelivery.objects.filter(message_id=message.pk).count() == 1


def test_retry_delays_double_with_jitter() -> None:
    for attempts, ceiling in [(1, 120), (2, 240), (3, 480), (4, 960)]:
        delays = {retry_delay(attempts).total_seconds() for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_retries_are_bounded_then_the_message_fails_and_is_refunded(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-a", "simulator-b"]
    settings.TMC_RETRY_MAX_ATTEMPTS = 3
    message = _send(tenant_a, committed)

    for _ in range(2):
        GatewayHealth.objects.update(down_until=None)  # let it try them again
        with committed(execute=True):
            messages_retry_due(now=timezone.now() + timedelta(days=1))

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.attempts == 2
    assert message.failure_reason.startswith("Not sent after 3 attempts")
    assert _balance(tenant_a.organisation) == 100
    assert _refunds(message) == 1
    assert not SimulatedDelivery.objects.exists()


def test_a_permanent_refusal_fails_at_once_and_refunds(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture
) -> None:
    SimulatedHandset.objects.create(
        number=E164, outcome=SimulatedHandset.Outcome.REJECT
    )

    message = _send(tenant_a, committed, body="a" * 200)

    assert message.status == Message.Status.FAILED
    assert message.failure_reason == "destination barred"
    assert message.gateway == "simulator-a"
    assert _balance(tenant_a.organisation) == 100
    refund = CreditLedgerEntry.objects.get(kind=CreditLedgerEntry.Kind.REFUND)
    assert (refund.amount, refund.reason) == (2, f"Refund for message {message.pk}")
    # A refusal of one number says nothing about the gateway.
    assert not GatewayHealth.objects.exists()


def test_closing_twice_refunds_once(tenant_a: Tenant) -> None:
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SUBMITTING)

    assert message_close(
        message_id=message.pk, status=Message.Status.FAILED, reason="refused"
    )
    assert not message_close(
        message_id=message.pk, status=Message.Status.FAILED, reason="refused"
    )

    assert _refunds(message) == 1
    assert _balance(tenant_a.organisation) == 100


@pytest.mark.django_db(transaction=True)
def test_two_workers_closing_one_message_at_once_refund_it_once() -> None:
    tenant = make_tenant("Hooli", credits=10)
    message = message_send(user=tenant.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SUBMITTING)
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def close() -> None:
        try:
            barrier.wait()
            results.append(
                message_close(
                    message_id=message.pk, status=Message.Status.FAILED, reason="x"
                )
            )
        finally:
            close_old_connections()

    threads = [threading.Thread(target=close) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, False, False, True]
    assert _refunds(message) == 1
    assert _balance(tenant.organisation) == 10 == _ledger_sum(tenant.organisation)


def test_a_message_not_sent_within_its_validity_expires_and_is_refunded(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_MESSAGE_VALIDITY_HOURS = 2
    queued = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    retrying = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=retrying.pk).update(status=Message.Status.RETRYING)
    assert queued.expires_at is not None
    validity = queued.expires_at - queued.created_at
    assert abs(validity - timedelta(hours=2)) < timedelta(seconds=1)

    assert messages_expire(now=queued.expires_at - timedelta(seconds=1)) == 0
    assert messages_expire(now=queued.expires_at + timedelta(seconds=1)) == 2

    for message in (queued, retrying):
        message.refresh_from_db()
        assert message.status == Message.Status.EXPIRED
        assert _refunds(message) == 1
    assert _balance(tenant_a.organisation) == 100


def test_a_worker_that_claims_an_expired_message_expires_it(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=False) as callbacks:
        message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=message.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    for callback in callbacks:
        callback()

    message.refresh_from_db()
    assert message.status == Message.Status.EXPIRED
    assert not SimulatedDelivery.objects.exists()
    assert _refunds(message) == 1


def test_the_reconciler_records_what_the_gateway_took(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture
) -> None:
    message = _send(tenant_a, committed)
    provider_id = message.provider_message_id
    # As a worker killed after the gateway took it, before it recorded so.
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTING,
        gateway="",
        provider_message_id="",
        submitting_since=timezone.now() - timedelta(minutes=10),
    )

    result = messages_reconcile(stale_before=timezone.now() - timedelta(minutes=5))

    message.refresh_from_db()
    assert (result.submitted, result.requeued) == (1, 0)
    assert message.status == Message.Status.SUBMITTED
    assert (message.gateway, message.provider_message_id) == (
        "simulator-a",
        provider_id,
    )


def test_the_reconciler_queues_again_what_no_gateway_took(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=False):
        message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    claimed_at = timezone.now() - timedelta(minutes=10)
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTING, submitting_since=claimed_at
    )
    fresh = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=fresh.pk).update(
        status=Message.Status.SUBMITTING, submitting_since=timezone.now()
    )

    with committed(execute=True):
        result = messages_reconcile(stale_before=timezone.now() - timedelta(minutes=5))

    message.refresh_from_db()
    fresh.refresh_from_db()
    assert (result.submitted, result.requeued) == (0, 1)
    assert message.status == Message.Status.SUBMITTED
    assert SimulatedDelivery.objects.filter(message_id=message.pk).count() == 1
    # A claim younger than the threshold belongs to a live worker.
    assert fresh.status == Message.Status.SUBMITTING


def test_the_reconciler_leaves_a_message_when_the_gateway_cannot_answer(
    uk_route: None, tenant_a: Tenant, settings: Any
) -> None:
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTING, submitting_since=None
    )
    settings.TMC_SIMULATOR_DOWN = ["simulator-a"]

    result = messages_reconcile(stale_before=timezone.now())

    message.refresh_from_db()
    assert result.unknown == 1
    assert message.status == Message.Status.SUBMITTING


def test_a_campaign_whose_last_messages_expire_is_done_and_refunded(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tmc.messaging import campaigns

    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)
    campaign = campaigns.campaign_send(
        user=tenant_a.user, numbers_text="07400 000001\n07400 000002", body="Hi"
    )
    campaigns.campaign_dispatch_batch(campaign_id=campaign.pk, size=1)

    assert messages_expire(now=timezone.now() + timedelta(days=2)) == 1

    campaign.refresh_from_db()
    progress = campaigns.campaign_progress(campaign=campaign)
    assert campaign.status == campaign.Status.DONE
    sent = progress.submitted + progress.delivered
    assert (sent, progress.failed, progress.queued) == (1, 1, 0)
    assert _balance(tenant_a.organisation) == 99


def test_the_periodic_task_retries_expires_and_reconciles(
    uk_route: None, tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    from tmc.messaging.tasks import messages_recover_task

    settings.TMC_RECONCILE_AFTER_SECONDS = 60
    due, stale, orphan = (
        message_send(user=tenant_a.user, recipient=NUMBER, body="Hi") for _ in range(3)
    )
    past = timezone.now() - timedelta(minutes=5)
    Message.objects.filter(pk=due.pk).update(
        status=Message.Status.RETRYING, next_attempt_at=past
    )
    Message.objects.filter(pk=stale.pk).update(expires_at=past)
    Message.objects.filter(pk=orphan.pk).update(
        status=Message.Status.SUBMITTING, submitting_since=past
    )

    with committed(execute=True):
        messages_recover_task.call_local()

    statuses = {
        pk: status for pk, status in Message.objects.values_list("pk", "status")
    }
    assert statuses == {
        due.pk: Message.Status.SUBMITTED,
        stale.pk: Message.Status.EXPIRED,
        orphan.pk: Message.Status.SUBMITTED,
    }


def test_the_reconciler_restarts_a_campaign_whose_dispatchers_were_lost(
    tenant_a: Tenant, committed: CommitCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tmc.messaging import campaigns

    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)
    campaign = campaigns.campaign_send(
        user=tenant_a.user, numbers_text="07400 000001\n07400 000002", body="Hi"
    )
    busy = campaigns.campaign_send(
        user=tenant_a.user, numbers_text="07400 000003\n07400 000004", body="Hi"
    )
    # Both started; the second has a message claimed a moment ago.
    Campaign.objects.update(status=Campaign.Status.SENDING)
    Message.objects.filter(
        pk=Message.objects.filter(campaign=busy).order_by("pk")[0].pk
    ).update(status=Message.Status.SUBMITTING, submitting_since=timezone.now())

    with committed(execute=True):
        messages_reconcile(stale_before=timezone.now() - timedelta(minutes=5))

    campaign.refresh_from_db()
    busy.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    assert SimulatedDelivery.objects.count() == 2
    assert busy.status == Campaign.Status.SENDING
