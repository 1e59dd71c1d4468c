"""Whatever happens to messages, the balance is the sum of the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tmc.accounts.models import CreditLedgerEntry
from tmc.accounts.services import credits_add
from tmc.gateways.simulator.models import SimulatedHandset
from tmc.messaging.models import Message
from tmc.messaging.recovery import messages_expire, messages_retry_due
from tmc.messaging.services import message_send
from tmc.routing.models import GatewayHealth
from tmc.routing.services import route_set
from tmc.testing import CommitCapture, Tenant

BARRED = "+447400999999"
STEPS = ["send", "send_long", "send_barred", "outage", "recover", "expire", "top_up"]


def _check_invariants(tenant: Tenant) -> None:
    organisation = tenant.organisation
    organisation.refresh_from_db()
    ledger = CreditLedgerEntry.objects.filter(organisation=organisation)
    assert organisation.credit_balance == ledger.aggregate(t=Sum("amount"))["t"]
    assert organisation.credit_balance >= 0

    refunds = dict(
        ledger.filter(kind=CreditLedgerEntry.Kind.REFUND)
        .values_list("reason")
        .annotate(n=Count("id"))
    )
    closed = Message.objects.filter(
        status__in=[Message.Status.FAILED, Message.Status.EXPIRED]
    )
    assert set(refunds.values()) <= {1}, "a message refunded twice"
    assert set(refunds) == {
        f"Refund for message {pk}" for pk in closed.values_list("pk", flat=True)
    }


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=15))
def test_balance_equals_ledger_through_sends_failures_refunds_and_expiries(
    steps: list[str], tenant_a: Tenant, committed: CommitCapture, settings: Any
) -> None:
    settings.TMC_RETRY_MAX_ATTEMPTS = 2
    route_set(prefix="+44", gateways=["simulator-a", "simulator-b"])
    SimulatedHandset.objects.get_or_create(
        number=BARRED, defaults={"outcome": SimulatedHandset.Outcome.REJECT}
    )
    user = tenant_a.user
    later = timezone.now() + timedelta(days=2)

    for step in steps:
        try:
            with committed(execute=True):
                if step == "send":
                    message_send(user=user, recipient="07400 123456", body="Hi")
                elif step == "send_long":
                    message_send(user=user, recipient="07400 123457", body="a" * 300)
                elif step == "send_barred":
                    message_send(user=user, recipient=BARRED, body="Hi")
                elif step == "outage":
                    settings.TMC_SIMULATOR_DOWN = ["simulator-a", "simulator-b"]
                elif step == "recover":
                    settings.TMC_SIMULATOR_DOWN = []
                    GatewayHealth.objects.update(down_until=None)
                    messages_retry_due(now=later)
                elif step == "expire":
                    messages_expire(now=later)
                else:
                    credits_add(
                        organisation=tenant_a.organisation, amount=7, reason="t"
                    )
        except ValidationError:
            pass  # out of credit: refused, nothing charged
        _check_invariants(tenant_a)
