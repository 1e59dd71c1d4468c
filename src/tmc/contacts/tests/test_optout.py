"""The opt-out list: STOP is honoured on every path, only START lifts it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tmc.audit.models import Event
from tmc.contacts.models import OptOut
from tmc.contacts.services import (
    opt_out_add_by_user,
    opted_out,
    reply_keyword,
)
from tmc.gateways.simulator.services import handset_reply
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import SENDER, CommitCapture, Tenant

NUMBER = "+447400555001"


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("STOP", "stop"),
        ("stop", "stop"),
        (" Stop. ", "stop"),
        ("STOP!!", "stop"),
        ("Unsubscribe", "stop"),
        ("stop all", "stop"),
        ("START", "start"),
        ("start!", "start"),
        ("Unstop", "start"),
        ("don't stop", None),
        ("STOP sending me these", None),
        ("YES", None),
        ("", None),
    ],
)
def test_keywords_are_read_whatever_the_case_and_punctuation(
    body: str, keyword: str | None
) -> None:
    assert reply_keyword(body) == keyword


def _send(tenant: Tenant, number: str = NUMBER) -> Message:
    return message_send(user=tenant.user, recipient=number, body="Shift on Saturday?")


def test_a_stop_reply_puts_the_number_on_its_organisations_list(
    tenant_a: Tenant, tenant_b: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=True):
        _send(tenant_a)

    handset_reply(handset_number=NUMBER, to=SENDER, body="Stop.")

    assert opted_out(tenant_a.organisation, NUMBER)
    assert not opted_out(tenant_b.organisation, NUMBER)
    event = Event.objects.get(action="optout.added")
    assert event.details["source"] == "reply"
    assert "555001" not in str(event.details)


def test_an_opted_out_number_cannot_be_sent_to_and_nothing_is_charged(
    tenant_a: Tenant,
) -> None:
    opt_out_add_by_user(user=tenant_a.user, number="07400 555001")
    balance = tenant_a.organisation.credit_balance

    with pytest.raises(ValidationError) as refused:
        _send(tenant_a, "07400 555001")

    assert "opted out" in refused.value.message_dict["recipient"][0]
    assert not Message.objects.exists()
    tenant_a.organisation.refresh_from_db()
    assert tenant_a.organisation.credit_balance == balance


def test_the_compose_page_shows_the_opt_out_next_to_the_number(
    tenant_a: Tenant,
) -> None:
    opt_out_add_by_user(user=tenant_a.user, number=NUMBER)
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        reverse("messaging:compose"),
        {"recipient": "07400 555001", "body": "Hello", "sender": SENDER},
    )

    assert response.status_code == 200
    assert "opted out" in response.content.decode()
    assert not Message.objects.exists()


def test_only_a_start_from_the_number_lifts_the_opt_out(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=True):
        _send(tenant_a)
    handset_reply(handset_number=NUMBER, to=SENDER, body="STOP")
    # Adding it again by hand, or another STOP, changes nothing.
    opt_out_add_by_user(user=tenant_a.user, number=NUMBER)
    handset_reply(handset_number=NUMBER, to=SENDER, body="stop")
    assert OptOut.objects.count() == 1

    handset_reply(handset_number=NUMBER, to=SENDER, body="Start!")

    assert not opted_out(tenant_a.organisation, NUMBER)
    assert Event.objects.filter(action="optout.lifted").count() == 1
    _send(tenant_a)  # allowed again


def test_an_ordinary_reply_does_not_opt_out(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    with committed(execute=True):
        _send(tenant_a)

    handset_reply(handset_number=NUMBER, to=SENDER, body="Please don't stop them")

    assert not OptOut.objects.exists()


def test_a_bad_number_for_the_list_is_a_field_error(tenant_a: Tenant) -> None:
    with pytest.raises(ValidationError) as refused:
        opt_out_add_by_user(user=tenant_a.user, number="hello")

    assert "number" in refused.value.message_dict
    assert not OptOut.objects.exists()
