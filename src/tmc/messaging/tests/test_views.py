"""The compose, history and detail pages over HTTP, scoped per organisation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tmc.accounts.models import Organisation
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import PASSWORD, SENDER, Tenant

NUMBER = "07400 123456"


def test_pages_need_a_login(client: Client, db: None) -> None:
    for name in ["messaging:compose", "messaging:history", "accounts:dashboard"]:
        response = client.get(reverse(name))

        assert response.status_code == 302
        assert response["Location"].startswith(reverse("identity:login"))


def test_logging_in_and_out(client: Client, tenant_a: Tenant) -> None:
    response = client.post(
        reverse("identity:login"),
        {"username": "ACME-USER", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert client.get(reverse("accounts:dashboard")).status_code == 200

    client.post(reverse("identity:logout"))

    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_a_wrong_password_does_not_log_in(client: Client, tenant_a: Tenant) -> None:
    response = client.post(
        reverse("identity:login"),
        {"username": "acme-user", "password": "Wrong-passw0rd"},
    )

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert client.get(reverse("accounts:dashboard")).status_code == 302


def test_composing_a_text_queues_it_and_shows_it_in_history(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("messaging:compose"),
        {"recipient": NUMBER, "sender": SENDER, "body": "Can you work Saturday?"},
    )

    assert response.status_code == 302
    message = Message.objects.get()
    assert message.created_by == tenant_a.user
    history = client.get(response["Location"])
    assert f'id="message-{message.pk}"'.encode() in history.content
    assert b"+44 7400 1" in history.content
    assert b"+447400123456" not in history.content


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            {"recipient": "12", "sender": SENDER, "body": "Hi"},
            "not a valid phone number",
        ),
        ({"recipient": NUMBER, "sender": SENDER, "body": ""}, "Write the message"),
        (
            {"recipient": NUMBER, "sender": SENDER, "body": "x" * 1000},
            "needs 7 parts",
        ),
        (
            {"recipient": NUMBER, "sender": "Unknown", "body": "Hi"},
            "Select a valid choice",
        ),
    ],
)
def test_bad_input_shows_the_error_beside_the_field_and_sends_nothing(
    tenant_a: Tenant, form: dict[str, str], error: str
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(reverse("messaging:compose"), form)

    assert response.status_code == 200
    assert error in response.content.decode()
    assert b'role="alert"' in response.content
    assert Message.objects.count() == 0
    tenant_a.organisation.refresh_from_db()
    assert tenant_a.organisation.credit_balance == 100


def test_the_live_counter_reports_encoding_and_parts(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)

    gsm = client.post(reverse("messaging:segments"), {"body": "€" * 81})
    ucs = client.post(reverse("messaging:segments"), {"body": "Olá ✓"})

    assert b'data-encoding="GSM-7" data-parts="2"' in gsm.content
    assert b'data-encoding="UCS-2" data-parts="1"' in ucs.content


def test_history_polls_only_while_a_message_is_moving(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SUBMITTED)

    moving = client.get(reverse("messaging:history"), headers={"HX-Request": "true"})
    Message.objects.filter(pk=message.pk).update(status=Message.Status.DELIVERED)
    settled = client.get(reverse("messaging:history"), headers={"HX-Request": "true"})

    assert b'hx-trigger="every 2s"' in moving.content
    assert b"<html" not in moving.content
    assert b"hx-trigger" not in settled.content


def test_another_organisations_message_is_not_found_by_id(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    message = message_send(user=tenant_a.user, recipient=NUMBER, body="Private")
    outsider = tenant_b.client_for(tenant_b.controller)
    insider = tenant_a.client_for(tenant_a.administrator)

    assert (
        insider.get(reverse("messaging:detail", args=[message.pk])).status_code == 200
    )
    for guess in range(max(1, message.pk - 2), message.pk + 3):
        response = outsider.get(reverse("messaging:detail", args=[guess]))
        assert response.status_code == 404
        assert b"Private" not in response.content


def test_history_and_dashboard_show_only_the_own_organisation(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    message_send(user=tenant_a.user, recipient=NUMBER, body="From Acme")
    outsider = tenant_b.client_for(tenant_b.user)

    history = outsider.get(reverse("messaging:history"))
    dashboard = outsider.get(reverse("accounts:dashboard"))

    assert b"No messages yet" in history.content
    assert b"Nothing sent yet" in dashboard.content
    assert b"Acme" not in dashboard.content


def test_dashboard_shows_balance_and_counts(tenant_a: Tenant) -> None:
    message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    client = tenant_a.client_for(tenant_a.controller)

    response = client.get(reverse("accounts:dashboard"))

    balance = Organisation.objects.get(pk=tenant_a.organisation.pk).credit_balance
    assert f'data-testid="credit-balance">{balance}<'.encode() in response.content
    assert balance == 99


@pytest.mark.django_db(transaction=True)
def test_history_page_runs_a_fixed_number_of_queries(tenant_a: Tenant) -> None:
    """No query per message: the page costs the same for 10 rows as for 20."""
    client = tenant_a.client_for(tenant_a.user)
    for _ in range(10):
        message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    client.get(reverse("messaging:history"))  # keys unwrapped and cached

    with CaptureQueriesContext(connection) as ten:
        client.get(reverse("messaging:history"))
    for _ in range(10):
        message_send(user=tenant_a.user, recipient=NUMBER, body="Hi")
    with CaptureQueriesContext(connection) as twenty:
        client.get(reverse("messaging:history"))

    assert len(twenty) == len(ten) <= 8
