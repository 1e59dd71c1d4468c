"""Prices per destination country and the monthly allowance of free parts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import close_old_connections, connection
from django.db.models import Sum
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from tmc.accounts.models import CreditLedgerEntry, Organisation, Package, PackagePrice
from tmc.accounts.pricing import PriceList, allowance_left, charge_plan, price_list
from tmc.audit.models import Event
from tmc.identity.models import User
from tmc.messaging import campaigns
from tmc.messaging.campaigns import campaign_preview, campaign_send
from tmc.messaging.cancelling import campaign_cancel
from tmc.messaging.models import Campaign, Message
from tmc.messaging.services import message_close, message_send
from tmc.testing import SENDER, Tenant, make_tenant, staff_client_for

UK = "07400 123456"
FRANCE = "+33 6 12 34 56 78"
US = "+1 202 555 0143"


@pytest.fixture(autouse=True)
def _no_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaigns, "_enqueue", lambda *args: None)


def _package(
    tenant: Tenant, *, allowance: int = 0, prices: dict[str, int] | None = None
) -> Package:
    package = Package.objects.create(
        name=f"Plan {tenant.organisation.pk}",
        credits=0,
        credits_per_part=1,
        monthly_allowance=allowance,
    )
    for code, price in (prices or {}).items():
        PackagePrice.objects.create(
            package=package, country_code=code, credits_per_part=price
        )
    Organisation.objects.filter(pk=tenant.organisation.pk).update(package=package)
    return package


def _fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)


def _organisation(tenant: Tenant) -> Organisation:
    return Organisation.objects.get(pk=tenant.organisation.pk)


def _ledger_sum(organisation: Organisation) -> int:
    total = CreditLedgerEntry.objects.filter(organisation=organisation).aggregate(
        t=Sum("amount")
    )["t"]
    return int(total or 0)


def test_a_text_costs_its_countrys_price_per_part(tenant_a: Tenant) -> None:
    _package(tenant_a, prices={"33": 3, "1": 2})
    user = _fresh(tenant_a.user)
    before = _organisation(tenant_a).credit_balance

    to_france = message_send(user=user, recipient=FRANCE, body="a" * 200)
    to_uk = message_send(user=user, recipient=UK, body="a" * 200)
    to_us = message_send(user=user, recipient=US, body="Hi")

    assert (to_france.parts, to_france.credits) == (2, 6)
    assert (to_uk.parts, to_uk.credits) == (2, 2)
    assert to_us.credits == 2
    organisation = _organisation(tenant_a)
    assert organisation.credit_balance == before - 10
    assert organisation.credit_balance == _ledger_sum(organisation)


def test_without_a_package_every_part_costs_one_credit(tenant_a: Tenant) -> None:
    message = message_send(user=_fresh(tenant_a.user), recipient=FRANCE, body="Hi")

    assert message.credits == 1


def test_a_campaign_reserves_each_destinations_price(tenant_a: Tenant) -> None:
    _package(tenant_a, prices={"33": 5})
    user = _fresh(tenant_a.user)
    numbers = f"{UK}\n{FRANCE}\n07400 000002"
    before = _organisation(tenant_a).credit_balance

    preview = campaign_preview(user=user, numbers_text=numbers, body="Hi")
    campaign = campaign_send(user=user, numbers_text=numbers, body="Hi")

    assert preview.credits == 7
    assert campaign.credits_reserved == 7
    credits = sorted(Message.objects.values_list("credits", flat=True))
    assert credits == [1, 1, 5]
    debit = CreditLedgerEntry.objects.get(reason=f"Campaign {campaign.pk}")
    assert debit.amount == -7
    assert _organisation(tenant_a).credit_balance == before - 7


def test_a_campaign_over_the_balance_at_its_prices_is_refused(
    tenant_a: Tenant,
) -> None:
    _package(tenant_a, prices={"33": 200})
    user = _fresh(tenant_a.user)

    with pytest.raises(ValidationError) as caught:
        campaign_send(user=user, numbers_text=FRANCE, body="Hi")

    assert "200 credits" in str(caught.value)
    assert not Campaign.objects.exists()


def test_free_parts_are_used_before_credits_until_the_allowance_is_spent(
    tenant_a: Tenant,
) -> None:
    _package(tenant_a, allowance=3, prices={"33": 4})
    user = _fresh(tenant_a.user)
    before = _organisation(tenant_a).credit_balance

    first = message_send(user=user, recipient=FRANCE, body="a" * 200)
    second = message_send(user=user, recipient=FRANCE, body="a" * 200)
    third = message_send(user=user, recipient=UK, body="Hi")

    assert (first.free_parts, first.credits) == (2, 0)
    assert (second.free_parts, second.credits) == (1, 4)
    assert (third.free_parts, third.credits) == (0, 1)
    organisation = _organisation(tenant_a)
    assert organisation.allowance_used == 3
    assert organisation.credit_balance == before - 5
    assert organisation.credit_balance == _ledger_sum(organisation)
    # No debit for the free text: the ledger holds only credit movements.
    assert not CreditLedgerEntry.objects.filter(reason=f"Message {first.pk}").exists()
    assert allowance_left(organisation, price_list(organisation)) == 0
    next_month = datetime.now(UTC) + timedelta(days=32)
    assert allowance_left(organisation, price_list(organisation), next_month) == 3


def test_a_campaign_takes_free_parts_first_and_records_them(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=3)
    user = _fresh(tenant_a.user)
    numbers = "\n".join(f"07400 00000{n}" for n in range(5))

    preview = campaign_preview(user=user, numbers_text=numbers, body="Hi")
    campaign = campaign_send(user=user, numbers_text=numbers, body="Hi")

    assert (preview.free_parts, preview.credits) == (3, 2)
    assert (campaign.free_parts, campaign.credits_reserved) == (3, 2)
    assert Message.objects.aggregate(free=Sum("free_parts"))["free"] == 3
    assert _organisation(tenant_a).allowance_used == 3
    event = Event.objects.get(action="campaign.sent")
    assert event.details["free_parts"] == 3


def test_a_wholly_free_campaign_writes_no_ledger_row(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=10)
    user = _fresh(tenant_a.user)

    campaign = campaign_send(user=user, numbers_text=UK, body="Hi")

    assert campaign.credits_reserved == 0
    assert not CreditLedgerEntry.objects.filter(
        reason=f"Campaign {campaign.pk}"
    ).exists()


def test_the_dashboard_shows_prices_and_the_allowance_left(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=50, prices={"33": 3})
    message_send(user=_fresh(tenant_a.user), recipient=UK, body="Hi")

    page = tenant_a.client_for(tenant_a.user).get("/")

    content = page.content.decode()
    assert "+33 (FR)" in content
    assert "3 per part" in content
    assert "<strong>49</strong> of 50 left" in content


@pytest.mark.django_db(transaction=True)
def test_two_campaigns_at_once_never_use_the_allowance_twice() -> None:
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Pied Piper", credits=500)
    _package(tenant, allowance=30)
    numbers = "\n".join(f"07400 {n:06d}" for n in range(20))
    start = threading.Barrier(2)

    def send() -> None:
        try:
            start.wait()
            campaign_send(user=_fresh(tenant.user), numbers_text=numbers, body="Hi")
        finally:
            close_old_connections()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    free = Campaign.objects.aggregate(f=Sum("free_parts"))["f"]
    assert free == 30
    assert Campaign.objects.aggregate(c=Sum("credits_reserved"))["c"] == 10
    organisation = _organisation(tenant)
    assert organisation.allowance_used == 30
    assert organisation.credit_balance == 490
    assert organisation.credit_balance == _ledger_sum(organisation)


# --- the staff Packages page --------------------------------------------------------


def test_only_accountants_and_up_manage_packages(staff: dict[int, Any]) -> None:
    form = {
        "name": "Gold",
        "credits": "5000",
        "credits_per_part": "1",
        "monthly_allowance": "100",
    }
    refused = staff_client_for(staff[1])
    assert refused.get(reverse("staff:packages")).status_code == 403
    assert refused.post(reverse("staff:packages"), form).status_code == 403
    assert not Package.objects.filter(name="Gold").exists()

    client = staff_client_for(staff[2])
    response = client.post(reverse("staff:packages"), form)

    package = Package.objects.get(name="Gold")
    assert response.status_code == 302
    assert package.monthly_allowance == 100
    assert Event.objects.filter(action="package.created").count() == 1


def test_staff_set_and_remove_a_countrys_price(staff: dict[int, Any]) -> None:
    package = Package.objects.create(name="Silver", credits=100)
    client = staff_client_for(staff[2])
    page = reverse("staff:package_edit", kwargs={"package_id": package.pk})

    bad = client.post(
        page, {"set_price": "1", "country_code": "999", "credits_per_part": "2"}
    )
    assert bad.status_code == 200
    assert "country_code" in bad.context["price_form"].errors
    assert not PackagePrice.objects.exists()

    client.post(
        page, {"set_price": "1", "country_code": "+33", "credits_per_part": "3"}
    )
    client.post(page, {"set_price": "1", "country_code": "33", "credits_per_part": "4"})

    assert list(
        PackagePrice.objects.values_list("country_code", "credits_per_part")
    ) == [("33", 4)]
    assert "FR" in client.get(page).content.decode()
    assert Event.objects.filter(action="package.price_set").count() == 2

    client.post(
        reverse("staff:package_price_delete", kwargs={"package_id": package.pk}),
        {"country_code": "33"},
    )
    assert not PackagePrice.objects.exists()
    assert Event.objects.filter(action="package.price_deleted").count() == 1


def test_staff_change_a_package_and_bad_values_change_nothing(
    staff: dict[int, Any],
) -> None:
    package = Package.objects.create(name="Bronze", credits=100)
    client = staff_client_for(staff[2])
    page = reverse("staff:package_edit", kwargs={"package_id": package.pk})
    form = {
        "save_package": "1",
        "name": "Bronze",
        "credits": "100",
        "credits_per_part": "0",
        "monthly_allowance": "10",
    }

    refused = client.post(page, form)
    assert refused.status_code == 200
    package.refresh_from_db()
    assert package.monthly_allowance == 0

    client.post(page, {**form, "credits_per_part": "2"})
    package.refresh_from_db()
    assert (package.credits_per_part, package.monthly_allowance) == (2, 10)
    event = Event.objects.get(action="package.changed")
    assert event.details["changed"] == ["credits_per_part", "monthly_allowance"]


# --- refunds give free parts back -------------------------------------------------


def test_a_refused_text_gives_back_its_free_parts_once(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=3)
    user = _fresh(tenant_a.user)
    before = _organisation(tenant_a).credit_balance
    message = message_send(user=user, recipient=UK, body="a" * 400)  # 3 parts
    assert (message.free_parts, message.credits) == (3, 0)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SUBMITTING)

    assert message_close(
        message_id=message.pk, status=Message.Status.FAILED, reason="Barred"
    )

    organisation = _organisation(tenant_a)
    assert organisation.allowance_used == 0
    assert organisation.credit_balance == before
    assert not message_close(
        message_id=message.pk, status=Message.Status.FAILED, reason="Barred"
    )
    assert _organisation(tenant_a).allowance_used == 0


def test_a_last_months_free_parts_are_not_given_back(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=5)
    message = message_send(user=_fresh(tenant_a.user), recipient=UK, body="Hi")
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SUBMITTING,
        created_at=datetime.now(UTC) - timedelta(days=40),
    )

    message_close(message_id=message.pk, status=Message.Status.FAILED, reason="x")

    assert _organisation(tenant_a).allowance_used == 1


def test_a_cancelled_campaign_gives_back_its_free_parts(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=4)
    user = _fresh(tenant_a.user)
    numbers = "\n".join(f"07400 00000{n}" for n in range(6))
    before = _organisation(tenant_a).credit_balance
    campaign = campaign_send(user=user, numbers_text=numbers, body="Hi")
    assert (campaign.free_parts, campaign.credits_reserved) == (4, 2)

    campaign_cancel(user=user, campaign=campaign)

    organisation = _organisation(tenant_a)
    assert organisation.allowance_used == 0
    assert organisation.credit_balance == before
    assert organisation.credit_balance == _ledger_sum(organisation)
    event = Event.objects.get(action="campaign.cancelled")
    assert event.details["free_parts_returned"] == 4


def test_the_send_to_many_preview_shows_free_parts_and_priced_credits(
    tenant_a: Tenant,
) -> None:
    _package(tenant_a, allowance=1, prices={"33": 3})
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("messaging:bulk"),
        {"numbers": f"{UK}\n{FRANCE}", "sender": SENDER, "body": "Hi", "preview": "1"},
        headers={"HX-Request": "true"},
    )

    page = response.content.decode()
    assert 'data-testid="free-parts">1<' in page
    assert 'data-testid="credits">3 ' in page
    assert Campaign.objects.count() == 0


NUMBERS = ["+447400000001", "+33612345678", "+12025550143", "+353851234567"]


@given(
    recipients=st.lists(st.sampled_from(NUMBERS), max_size=30),
    parts=st.integers(min_value=1, max_value=6),
    free=st.integers(min_value=0, max_value=200),
    priced=st.booleans(),
)
def test_the_charge_plan_gives_free_parts_in_order_and_prices_the_rest(
    recipients: list[str], parts: int, free: int, priced: bool
) -> None:
    prices = (
        PriceList(default=2, by_code={"33": 3, "1": 4, "353": 7})
        if priced
        else PriceList()
    )

    charge = charge_plan(prices, recipients, parts, free)

    left = free
    for number, taken, credits in zip(
        recipients, charge.free_parts, charge.credits, strict=True
    ):
        assert taken == min(left, parts)
        left -= taken
        assert credits == (parts - taken) * prices.per_part(number)
    assert charge.total_free == min(free, parts * len(recipients))


def test_free_parts_count_towards_a_users_daily_limit(tenant_a: Tenant) -> None:
    _package(tenant_a, allowance=100)
    User.objects.filter(pk=tenant_a.user.pk).update(daily_message_limit=3)
    user = _fresh(tenant_a.user)
    message_send(user=user, recipient=UK, body="a" * 200)  # 2 free parts

    with pytest.raises(ValidationError) as caught:
        campaign_send(user=user, numbers_text="07400 000001\n07400 000002", body="Hi")

    assert "daily limit of 3" in str(caught.value)
    assert message_send(user=user, recipient=UK, body="Hi").free_parts == 1
