"""Keywords on dedicated numbers: a reply, a group, or both."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tmc.audit.models import Event
from tmc.boomerang.models import KeywordRule, VirtualNumber
from tmc.boomerang.services import keyword_rule_create, numbers_add
from tmc.contacts.models import Contact, Group
from tmc.contacts.services import opted_out
from tmc.gateways.services import inbound_receive
from tmc.messaging.models import Message
from tmc.testing import Tenant

DEDICATED = "+447400900050"
SHARED = "+447400900001"
HANDSET = "+447400123456"


@pytest.fixture
def dedicated(tenant_a: Tenant) -> VirtualNumber:
    numbers_add(numbers=[SHARED])
    (number,) = numbers_add(numbers=[DEDICATED], organisation=tenant_a.organisation)
    return number


def _text(body: str, to: str = DEDICATED) -> None:
    inbound_receive(gateway="simulator", sender=HANDSET, recipient=to, body=body)


def test_join_adds_the_sender_to_the_group_and_replies(
    tenant_a: Tenant, dedicated: VirtualNumber
) -> None:
    group = Group.objects.create(organisation=tenant_a.organisation, name="Runners")
    keyword_rule_create(
        user=tenant_a.controller,
        number=dedicated,
        keyword="join",
        reply="Welcome to the running club!",
        group=group,
    )

    _text("Join please")
    _text("JOIN")

    contact = Contact.objects.get(organisation=tenant_a.organisation)
    assert contact.number == HANDSET
    assert list(contact.groups.all()) == [group]
    replies = Message.objects.filter(organisation=tenant_a.organisation)
    assert [m.body for m in replies] == ["Welcome to the running club!"] * 2
    assert {m.sender for m in replies} == {DEDICATED}
    assert {m.recipient for m in replies} == {HANDSET}


def test_a_text_to_a_dedicated_number_belongs_to_its_organisation(
    tenant_a: Tenant, dedicated: VirtualNumber
) -> None:
    inbound = inbound_receive(
        gateway="simulator", sender=HANDSET, recipient=DEDICATED, body="Hello?"
    )

    assert inbound.organisation == tenant_a.organisation
    assert not Message.objects.exists()


def test_stop_wins_over_any_keyword(tenant_a: Tenant, dedicated: VirtualNumber) -> None:
    keyword_rule_create(
        user=tenant_a.controller, number=dedicated, keyword="INFO", reply="Info"
    )

    _text("STOP")
    _text("INFO")

    assert opted_out(tenant_a.organisation, HANDSET)
    # The keyword's reply would go to an opted-out number: it is not sent.
    assert not Message.objects.exists()


def test_keywords_do_nothing_on_the_shared_pool(
    tenant_a: Tenant, dedicated: VirtualNumber
) -> None:
    keyword_rule_create(
        user=tenant_a.controller, number=dedicated, keyword="INFO", reply="Info"
    )

    _text("INFO", to=SHARED)

    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("keyword", "reply", "field"),
    [
        ("two words", "x", "keyword"),
        ("STOP", "x", "keyword"),
        ("INFO", "", "reply"),
    ],
)
def test_bad_rules_are_refused(
    tenant_a: Tenant, dedicated: VirtualNumber, keyword: str, reply: str, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        keyword_rule_create(
            user=tenant_a.controller, number=dedicated, keyword=keyword, reply=reply
        )

    assert field in refused.value.message_dict
    assert not KeywordRule.objects.exists()


def test_another_organisations_number_is_refused(
    tenant_a: Tenant, tenant_b: Tenant, dedicated: VirtualNumber
) -> None:
    with pytest.raises(ValidationError) as refused:
        keyword_rule_create(
            user=tenant_b.controller, number=dedicated, keyword="INFO", reply="x"
        )

    assert "virtual_number" in refused.value.message_dict


def test_the_keywords_page_adds_and_removes_rules_behind_the_second_password(
    tenant_a: Tenant, dedicated: VirtualNumber
) -> None:
    before = tenant_a.client_for(tenant_a.controller)
    assert before.get("/questions/keywords/").status_code == 302
    client = tenant_a.client_for(tenant_a.controller, second_factor=True)

    added = client.post(
        "/questions/keywords/",
        {"virtual_number": dedicated.pk, "keyword": "info", "reply": "Open 9 to 5"},
    )
    rule = KeywordRule.objects.get()
    page = client.get("/questions/keywords/").content.decode()
    removed = client.post(f"/questions/keywords/{rule.pk}/delete/")

    assert added.status_code == 302
    assert "INFO" in page
    assert removed.status_code == 302
    assert not KeywordRule.objects.exists()
    assert Event.objects.filter(action__startswith="keyword_rule.").count() == 2


def test_users_cannot_manage_keywords(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)

    assert client.get("/questions/keywords/").status_code == 403
