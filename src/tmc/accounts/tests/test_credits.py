"""Credits: never negative, never double-spent, every change in the ledger."""

from __future__ import annotations

import threading

import pytest
from django.db import close_old_connections, connection

from tmc.accounts.models import CreditLedgerEntry, Organisation
from tmc.accounts.services import InsufficientCredit, credits_add, credits_debit
from tmc.testing import Tenant, make_tenant


def test_debit_and_add_keep_the_ledger_in_step(tenant_a: Tenant) -> None:
    organisation = tenant_a.organisation

    credits_debit(organisation=organisation, amount=30, reason="campaign")
    credits_add(organisation=organisation, amount=5, reason="goodwill")

    organisation.refresh_from_db()
    assert organisation.credit_balance == 75
    entries = list(
        CreditLedgerEntry.objects.filter(organisation=organisation).order_by("id")
    )
    assert [e.amount for e in entries] == [100, -30, 5]
    assert [e.balance_after for e in entries] == [100, 70, 75]


def test_a_debit_larger_than_the_balance_is_refused(tenant_a: Tenant) -> None:
    with pytest.raises(InsufficientCredit) as refused:
        credits_debit(organisation=tenant_a.organisation, amount=101, reason="x")

    assert (refused.value.needed, refused.value.available) == (101, 100)
    tenant_a.organisation.refresh_from_db()
    assert tenant_a.organisation.credit_balance == 100


@pytest.mark.django_db(transaction=True)
def test_concurrent_debits_never_spend_more_than_the_balance() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella", credits=10)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def spend() -> None:
        organisation = Organisation.objects.get(pk=tenant.organisation.pk)
        start.wait()
        try:
            credits_debit(organisation=organisation, amount=3, reason="race")
            outcomes.append("spent")
        except InsufficientCredit:
            outcomes.append("refused")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    tenant.organisation.refresh_from_db()
    assert outcomes.count("spent") == 3
    assert tenant.organisation.credit_balance == 1
