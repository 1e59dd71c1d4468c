"""A campaign's batch goes to the gateway in one call and is recorded at once.

The one-message rules hold for a batch: refusals refunded, failover, the
throughput limit, retries; and what a batch costs in queries does not grow
with its size.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from tmc.accounts.models import CreditLedgerEntry
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.gateways.simulator.services import simulator_reports
from tmc.messaging.campaigns import campaign_dispatch_batch, campaign_send
from tmc.messaging.models import Campaign, Message
from tmc.routing.models import GatewayHealth
from tmc.routing.services import route_set
from tmc.testing import CommitCapture, Tenant

Status = Message.Status


@pytest.fixture(autouse=True)
def _quiet(settings: Any) -> None:
    settings.TMC_SIMULATOR_REPORT_DELAY = 3600  # reports stay out of the way
    settings.TMC_GATEWAY_RATE = 1_000_000.0


def _campaign(tenant: Tenant, count: int, start: int = 0) -> Campaign:
    numbers = "\n".join(f"07400 {n:06d}" for n in range(start, start + count))
    return campaign_send(user=tenant.user, numbers_text=numbers, body="Hi")


def _statuses(campaign: Campaign) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Message.objects.filter(campaign=campaign).values_list(
        "status", flat=True
    ):
        counts[status] = counts.get(status, 0) + 1
    return counts


def _dispatch_queries(campaign: Campaign) -> int:
    with CaptureQueriesContext(connection) as queries:
        campaign_dispatch_batch(campaign_id=campaign.pk, size=500)
    return len(queries)


def _balanced(tenant: Tenant) -> int:
    organisation = tenant.organisation
    organisation.refresh_from_db()
    ledger = CreditLedgerEntry.objects.filter(organisation=organisation)
    assert organisation.credit_balance == ledger.aggregate(t=Sum("amount"))["t"]
    return int(organisation.credit_balance)


def test_a_batch_costs_as_many_queries_for_sixty_messages_as_for_five(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    _dispatch_queries(_campaign(tenant_a, 1, start=900))  # first use of the bucket
    small = _campaign(tenant_a, 5)
    large = _campaign(tenant_a, 60, start=100)
    with committed(execute=True):
        # The data key, read once, is kept only after a commit.
        assert Message.objects.filter(campaign=small).first().recipient  # type: ignore[union-attr]

    assert _dispatch_queries(small) == _dispatch_queries(large)

    assert _statuses(large) == {Status.SUBMITTED: 60}
    recorded = dict(
        SimulatedDelivery.objects.values_list("message_id", "provider_message_id")
    )
    for message in Message.objects.filter(campaign__in=[small, large]):
        assert message.gateway == "simulator"
        assert message.submitted_at is not None
        assert recorded[message.pk] == message.provider_message_id


def test_refusals_in_a_batch_fail_and_are_refunded_in_one_entry(
    tenant_a: Tenant,
) -> None:
    for number in ("+447400000001", "+447400000003"):
        SimulatedHandset.objects.create(
            number=number, outcome=SimulatedHandset.Outcome.REJECT
        )
    campaign = _campaign(tenant_a, 5)

    campaign_dispatch_batch(campaign_id=campaign.pk)

    assert _statuses(campaign) == {Status.SUBMITTED: 3, Status.FAILED: 2}
    failed = Message.objects.filter(status=Status.FAILED)
    assert {(m.failure_reason, m.gateway) for m in failed} == {
        ("destination barred", "simulator")
    }
    refunds = CreditLedgerEntry.objects.filter(kind=CreditLedgerEntry.Kind.REFUND)
    assert [(r.amount, r.reason) for r in refunds] == [
        (2, f"Refund for 2 messages of campaign {campaign.pk}")
    ]
    assert _balanced(tenant_a) == 97
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE


def test_a_batch_fails_over_to_the_next_gateway_once(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-a"]
    route_set(prefix="+44", gateways=["simulator-a", "simulator-b"])
    campaign = _campaign(tenant_a, 4)

    campaign_dispatch_batch(campaign_id=campaign.pk)

    assert _statuses(campaign) == {Status.SUBMITTED: 4}
    assert set(Message.objects.values_list("gateway", flat=True)) == {"simulator-b"}
    health = GatewayHealth.objects.get(name="simulator-a")
    assert health.consecutive_failures == 1


def test_a_batch_no_gateway_takes_waits_to_retry_each_at_its_own_time(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator-a", "simulator-b"]
    route_set(prefix="+44", gateways=["simulator-a", "simulator-b"])
    campaign = _campaign(tenant_a, 6)

    campaign_dispatch_batch(campaign_id=campaign.pk)

    messages = Message.objects.filter(campaign=campaign)
    assert _statuses(campaign) == {Status.RETRYING: 6}
    assert {(m.attempts, m.failure_reason) for m in messages} == {
        (1, "simulated provider is down")
    }
    assert len({m.next_attempt_at for m in messages}) == 6  # jittered
    assert not messages.exclude(submitting_since=None).exists()
    assert _balanced(tenant_a) == 94


def test_a_batch_out_of_attempts_fails_and_is_refunded(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_SIMULATOR_DOWN = ["simulator"]
    settings.TMC_RETRY_MAX_ATTEMPTS = 1
    campaign = _campaign(tenant_a, 3)

    campaign_dispatch_batch(campaign_id=campaign.pk)

    assert _statuses(campaign) == {Status.FAILED: 3}
    reasons = set(Message.objects.values_list("failure_reason", flat=True))
    assert reasons == {"Not sent after 1 attempts: simulated provider is down"}
    assert _balanced(tenant_a) == 100


def test_a_batch_larger_than_the_bucket_goes_a_bucketful_at_a_time(
    tenant_a: Tenant, settings: Any
) -> None:
    settings.TMC_REDIS_URL = ""
    settings.TMC_GATEWAY_RATES = {"simulator": 40.0}
    settings.TMC_GATEWAY_BURST_SECONDS = 0.1  # 4 tokens at 40 a second
    campaign = _campaign(tenant_a, 12)

    started = time.monotonic()
    campaign_dispatch_batch(campaign_id=campaign.pk)
    took = time.monotonic() - started

    assert _statuses(campaign) == {Status.SUBMITTED: 12}
    assert SimulatedDelivery.objects.count() == 12
    # Four at once, then eight more at 40 a second.
    assert took >= 8 / 40 * 0.9


def test_delivery_reports_of_a_batch_are_recorded_together_and_once(
    tenant_a: Tenant, settings: Any, committed: CommitCapture
) -> None:
    SimulatedHandset.objects.create(
        number="+447400000002", outcome=SimulatedHandset.Outcome.FAIL
    )
    SimulatedHandset.objects.create(
        number="+447400000004", outcome=SimulatedHandset.Outcome.SILENT
    )
    settings.TMC_SIMULATOR_REPORT_DELAY = 0
    campaign = _campaign(tenant_a, 6)

    with committed(execute=True):
        campaign_dispatch_batch(campaign_id=campaign.pk)

    assert _statuses(campaign) == {
        Status.DELIVERED: 4,
        Status.FAILED: 1,
        Status.SUBMITTED: 1,
    }
    failed = Message.objects.get(status=Status.FAILED)
    assert failed.failure_reason == "Handset unreachable"
    assert failed.completed_at is not None
    provider_ids = list(
        SimulatedDelivery.objects.values_list("provider_message_id", flat=True)
    )
    assert simulator_reports(provider_ids) == {}
    # A failed delivery was taken by the gateway and is charged.
    assert _balanced(tenant_a) == 94
