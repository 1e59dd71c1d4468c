"""Sending to many: the preview, acceptance, credits and batch dispatch."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import close_old_connections, connection
from django.test.utils import CaptureQueriesContext

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.audit.models import Event
from tmc.contacts.models import Group
from tmc.contacts.services import ContactDetails, contact_create, opt_out_add_by_user
from tmc.gateways.simulator.models import SimulatedDelivery, SimulatedHandset
from tmc.identity.models import User
from tmc.messaging import campaigns
from tmc.messaging.campaigns import (
    campaign_dispatch_batch,
    campaign_preview,
    campaign_progress,
    campaign_send,
)
from tmc.messaging.models import Campaign, Message
from tmc.testing import SENDER, CommitCapture, Tenant, make_tenant, wait_until


def _balance(organisation: Organisation) -> int:
    organisation.refresh_from_db()
    return organisation.credit_balance


def _numbers(count: int, start: int = 0) -> str:
    return "\n".join(f"07400 {n:06d}" for n in range(start, start + count))


def test_the_preview_counts_kept_and_removed_numbers_with_their_lines(
    tenant_a: Tenant,
) -> None:
    opt_out_add_by_user(user=tenant_a.user, number="07400 000003")
    typed = "\n".join(
        [
            "07400 000001, 07400 000002",  # line 1: two numbers
            "not-a-number",  # line 2
            "+44 7400 000001",  # line 3: line 1's first, again
            "07400 000003",  # line 4: opted out
            "",
            "020 7946 0000",  # line 6: a landline
        ]
    )

    preview = campaign_preview(
        user=tenant_a.user, numbers_text=typed, body="a" * 200, sender=""
    )

    assert preview.recipients == ("+447400000001", "+447400000002")
    assert [(r.line, r.why) for r in preview.invalid] == [
        (2, "Not a phone number."),
        (6, "Not a mobile number."),
    ]
    assert all(r.number == "" for r in preview.invalid)
    assert "not-a-number" not in repr(preview.removed)
    assert [(r.line, r.number) for r in preview.duplicates] == [(3, "+447400000001")]
    assert [(r.line, r.number) for r in preview.opted_out] == [(4, "+447400000003")]
    assert (preview.segments.encoding, preview.segments.parts) == ("GSM-7", 2)
    assert (preview.credits, preview.balance, preview.balance_after) == (4, 100, 96)
    assert preview.sender == SENDER
    assert Campaign.objects.count() == 0
    assert Message.objects.count() == 0


def test_groups_and_contacts_join_the_typed_numbers_once_each(
    tenant_a: Tenant,
) -> None:
    group = Group.objects.create(organisation=tenant_a.organisation, name="Staff")
    for number in ("07400 000001", "07400 000002"):
        contact_create(
            user=tenant_a.user,
            number=number,
            details=ContactDetails(name="Someone"),
            group_ids=[group.pk],
        )
    loner = contact_create(
        user=tenant_a.user, number="07400 000009", details=ContactDetails()
    )

    preview = campaign_preview(
        user=tenant_a.user,
        numbers_text="07400 000001",
        contact_ids=[loner.pk],
        group_ids=[group.pk],
        body="Hello",
    )

    assert sorted(preview.recipients) == [
        "+447400000001",
        "+447400000002",
        "+447400000009",
    ]
    assert [(r.line, r.number) for r in preview.duplicates] == [(None, "+447400000001")]


def test_opt_outs_are_found_in_one_query_however_many_numbers(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    opt_out_add_by_user(user=tenant_a.user, number="07400 000007")

    for in_list in (5000, 1):  # an IN list, then the whole opt-out list
        monkeypatch.setattr(campaigns, "OPT_OUT_IN_LIST", in_list)
        with CaptureQueriesContext(connection) as queries:
            preview = campaign_preview(
                user=tenant_a.user, numbers_text=_numbers(60), body="Hi"
            )

        opt_out_queries = [q for q in queries if "contacts_optout" in q["sql"]]
        assert len(opt_out_queries) == 1
        assert preview.recipient_count == 59
        assert [r.number for r in preview.opted_out] == ["+447400000007"]


def test_a_user_without_the_bulk_permission_is_refused(tenant_a: Tenant) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(can_send_bulk=False)
    tenant_a.user.refresh_from_db()

    with pytest.raises(PermissionDenied):
        campaign_preview(user=tenant_a.user, numbers_text=_numbers(2), body="Hi")
    with pytest.raises(PermissionDenied):
        campaign_send(user=tenant_a.user, numbers_text=_numbers(2), body="Hi")

    assert Campaign.objects.count() == 0


@pytest.mark.parametrize(
    ("numbers", "body", "sender", "field", "reason"),
    [
        ("", "Hello", "", "numbers", "Enter at least one number"),
        ("nonsense\n020 7946 0000", "Hello", "", "numbers", "every number was removed"),
        (_numbers(2), "", "", "body", "Write the message"),
        (_numbers(2), "a" * 919, "", "body", "needs 7 parts"),
        (_numbers(2), "Hello", "Unknown", "sender", "not an approved sender"),
        (_numbers(51), "a" * 200, "", "body", "needs 102 credits"),
    ],
)
def test_bad_campaigns_are_refused_by_field_and_create_nothing(
    tenant_a: Tenant, numbers: str, body: str, sender: str, field: str, reason: str
) -> None:
    for service in (campaign_preview, campaign_send):
        with pytest.raises(ValidationError) as refused:
            service(user=tenant_a.user, numbers_text=numbers, body=body, sender=sender)

        assert reason in " ".join(refused.value.message_dict[field])
    assert Campaign.objects.count() == 0
    assert Message.objects.count() == 0
    assert _balance(tenant_a.organisation) == 100


def test_a_campaign_over_the_daily_limit_is_refused(tenant_a: Tenant) -> None:
    User.objects.filter(pk=tenant_a.user.pk).update(daily_message_limit=5)
    tenant_a.user.refresh_from_db()
    campaign_send(user=tenant_a.user, numbers_text=_numbers(4), body="Hi")

    with pytest.raises(ValidationError, match="daily limit of 5"):
        campaign_preview(user=tenant_a.user, numbers_text=_numbers(2), body="Hi")
    with pytest.raises(ValidationError, match="daily limit of 5"):
        campaign_send(user=tenant_a.user, numbers_text=_numbers(2), body="Hi")

    assert Campaign.objects.count() == 1
    assert _balance(tenant_a.organisation) == 96


def test_another_organisations_group_is_refused(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = Group.objects.create(organisation=tenant_b.organisation, name="Theirs")

    with pytest.raises(ValidationError) as refused:
        campaign_send(
            user=tenant_a.user, numbers_text="", group_ids=[theirs.pk], body="Hi"
        )

    assert "groups" in refused.value.message_dict
    assert Message.objects.count() == 0


def test_sending_creates_sealed_messages_one_debit_and_one_event(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed():
        campaign = campaign_send(
            user=tenant_a.user,
            numbers_text=_numbers(3) + "\nbad",
            body="Weekend shift ✓",
        )

    campaign.refresh_from_db()
    assert campaign.body == "Weekend shift ✓"
    assert (campaign.recipient_count, campaign.invalid_count) == (3, 1)
    assert (campaign.encoding, campaign.parts, campaign.credits_reserved) == (
        "UCS-2",
        1,
        3,
    )
    assert campaign.status == Campaign.Status.QUEUED
    messages = list(campaign.messages.order_by("pk"))
    assert [m.recipient for m in messages] == [
        "+447400000000",
        "+447400000001",
        "+447400000002",
    ]
    assert {m.body for m in messages} == {"Weekend shift ✓"}
    assert {(m.status, m.sender, m.parts, m.credits) for m in messages} == {
        (Message.Status.QUEUED, SENDER, 1, 1)
    }
    assert len({m.uid for m in messages}) == 3
    debits = CreditLedgerEntry.objects.filter(kind=CreditLedgerEntry.Kind.MESSAGE)
    assert [(e.amount, e.balance_after) for e in debits] == [(-3, 97)]
    event = Event.objects.get(action="campaign.sent")
    assert event.details["recipients"] == 3
    recorded = json.dumps(event.details)
    assert "Weekend" not in recorded
    assert "7400" not in recorded
    assert SimulatedDelivery.objects.count() == 0  # dispatch waits for commit


def test_a_sent_campaign_is_delivered_and_done(
    tenant_a: Tenant, committed: CommitCapture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two dispatchers of two messages a batch: the fifth message is sent only
    # if a dispatcher queues itself again.
    monkeypatch.setattr(campaigns, "DISPATCH_BATCH", 2)
    SimulatedHandset.objects.create(
        number="+447400000004", outcome=SimulatedHandset.Outcome.FAIL
    )

    with committed(execute=True):
        campaign = campaign_send(
            user=tenant_a.user, numbers_text=_numbers(5), body="Hello"
        )

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    assert campaign.completed_at is not None
    progress = campaign_progress(campaign=campaign)
    assert (progress.queued, progress.submitted) == (0, 0)
    assert (progress.delivered, progress.failed) == (4, 1)
    assert progress.percent == 100
    assert SimulatedDelivery.objects.count() == 5


def test_a_cancelled_campaign_sends_nothing_more(tenant_a: Tenant) -> None:
    campaign = campaign_send(user=tenant_a.user, numbers_text=_numbers(3), body="Hi")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CANCELLED)

    assert campaign_dispatch_batch(campaign_id=campaign.pk) == 0
    assert SimulatedDelivery.objects.count() == 0


# --- races ---------------------------------------------------------------------


def _in_threads(count: int, work: Any) -> None:
    start = threading.Barrier(count)

    def run() -> None:
        try:
            start.wait()
            work()
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@pytest.mark.django_db(transaction=True)
def test_concurrent_campaigns_never_overdraw_the_balance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)
    tenant = make_tenant("Umbrella", credits=100)
    outcomes: list[str] = []

    def send() -> None:
        user = User.objects.get(pk=tenant.user.pk)
        try:
            campaign_send(user=user, numbers_text=_numbers(60), body="Race")
            outcomes.append("sent")
        except ValidationError:
            outcomes.append("refused")

    _in_threads(2, send)

    assert sorted(outcomes) == ["refused", "sent"]
    assert _balance(tenant.organisation) == 40
    assert Campaign.objects.count() == 1
    assert Message.objects.count() == 60
    debits = CreditLedgerEntry.objects.filter(kind=CreditLedgerEntry.Kind.MESSAGE)
    assert [e.amount for e in debits] == [-60]


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_send_every_message_exactly_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dispatchers below are the only ones: none starts on commit.
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)
    tenant = make_tenant("Initech", credits=500)
    campaign = campaign_send(user=tenant.user, numbers_text=_numbers(230), body="Hi")

    def drain() -> None:
        while campaign_dispatch_batch(campaign_id=campaign.pk, size=20):
            pass

    if connection.vendor == "sqlite":
        drain()  # SQLite serialises writers: run the two one after the other
        drain()
    else:
        _in_threads(2, drain)

    deliveries = list(SimulatedDelivery.objects.values_list("handset__number"))
    assert len(deliveries) == 230
    assert len(set(deliveries)) == 230
    assert not Message.objects.exclude(status=Message.Status.DELIVERED).exists()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    progress = campaign_progress(campaign=campaign)
    assert (progress.delivered, progress.total) == (230, 230)


def test_the_worker_sends_a_campaign_in_batches_until_done(
    huey_worker: None, tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(campaigns, "DISPATCH_BATCH", 7)

    campaign = campaign_send(user=tenant_a.user, numbers_text=_numbers(30), body="Hi")

    def done() -> bool:
        campaign.refresh_from_db()
        return campaign.status == Campaign.Status.DONE

    wait_until(done)
    wait_until(lambda: campaign_progress(campaign=campaign).delivered == 30)
    providers = {m.provider_message_id for m in Message.objects.all()}
    assert len(providers) == 30
    assert SimulatedDelivery.objects.count() == 30
