"""API keys open the API only, and API ids never cross organisations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.access.test_url_rules import ALL_PATTERNS, CANARIES
from tmc.api.models import Scope
from tmc.api.services import api_key_create
from tmc.boomerang.models import ConversationEntry
from tmc.boomerang.services import numbers_add, question_send
from tmc.contacts.models import Contact, Group
from tmc.contacts.services import ContactDetails, contact_create, group_create
from tmc.gateways.services import inbound_receive
from tmc.identity.access import ACCESS_ATTRIBUTE
from tmc.messaging.campaigns import campaign_send
from tmc.messaging.services import message_send
from tmc.testing import Tenant

API_PATTERNS = [(r, n, p) for r, n, p in ALL_PATTERNS if n.startswith("api-v1:")]


def _bearer(user: Any) -> Client:
    created = api_key_create(
        actor=None, user=user, name="Everything", scopes=list(Scope.values)
    )
    return Client(HTTP_AUTHORIZATION=f"Bearer {created.raw}")


def test_api_views_are_keyed_except_the_schema_and_its_docs() -> None:
    rules = {name: getattr(p.callback, ACCESS_ATTRIBUTE) for _, name, p in API_PATTERNS}

    public = {name for name, rule in rules.items() if rule == "public"}
    assert public == {"api-v1:openapi-json", "api-v1:openapi-view"}
    assert set(rules.values()) == {"public", "api-key"}


@pytest.mark.parametrize("role", ["controller", "administrator"])
def test_a_key_never_opens_a_page(tenant_a: Tenant, role: str) -> None:
    """Even a Controller's key: pages need a session and, for control areas,
    the second password, which a key never carries."""
    client = _bearer(getattr(tenant_a, role))

    for route, name, pattern in ALL_PATTERNS:
        rule = getattr(pattern.callback, ACCESS_ATTRIBUTE)
        if not rule.startswith(("control", "signed-in")):
            continue
        # The redirect comes before any lookup, so any id will do.
        kwargs = {k.split(":")[-1]: 1 for k in re.findall(r"<([^>]+)>", route)}
        url = reverse(name, kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code == 405:
                continue
            assert response.status_code == 302, (name, method)
            assert response["Location"].startswith(reverse("identity:login"))


def _theirs(b: Tenant) -> dict[str, dict[str, int]]:
    """One object of B's for each API URL that takes an id."""
    message = message_send(user=b.user, recipient="07400 999111", body=CANARIES[0])
    group = group_create(user=b.user, name=CANARIES[5])
    contact = contact_create(
        user=b.user,
        number="07400 999111",
        details=ContactDetails(name=CANARIES[3]),
        group_ids=[group.pk],
    )
    numbers_add(numbers=["+447400900001"])
    asked = question_send(user=b.user, recipient="07400 999222", body=CANARIES[0])
    inbound_receive(
        gateway="simulator",
        sender=asked.recipient,
        recipient=asked.sender,
        body=CANARIES[0],
    )
    reply = ConversationEntry.objects.get(inbound__isnull=False)
    campaign = campaign_send(
        user=b.user, numbers_text="07400 999333\n07400 999444", body=CANARIES[0]
    )
    return {
        "api-v1:campaign_detail": {"campaign_id": campaign.pk},
        "api-v1:message_detail": {"message_id": message.pk},
        "api-v1:contact_detail": {"contact_id": contact.pk},
        "api-v1:contact_change": {"contact_id": contact.pk},
        "api-v1:contact_remove": {"contact_id": contact.pk},
        "api-v1:group_detail": {"group_id": group.pk},
        "api-v1:group_change": {"group_id": group.pk},
        "api-v1:group_remove": {"group_id": group.pk},
        "api-v1:reply_read": {"reply_id": reply.inbound_id or 0},
    }


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_each_role_gets_404_for_another_organisations_api_ids(
    tenant_a: Tenant, tenant_b: Tenant, role: str
) -> None:
    """Whatever the method, an id of B's answers as no id at all."""
    targets = _theirs(tenant_b)
    with_ids = {name for route, name, _ in API_PATTERNS if "<" in route}
    assert with_ids <= set(targets), f"not in the API matrix: {with_ids - set(targets)}"
    client = _bearer(getattr(tenant_a, role))

    for name, kwargs in targets.items():
        url = reverse(name, kwargs=kwargs)
        for method in ("get", "post", "patch", "delete"):
            response = getattr(client, method)(
                url, data={"name": "x"}, content_type="application/json"
            )
            if response.status_code == 405:
                continue
            assert response.status_code == 404, (name, method)
            assert response.json()["error"]["code"] == "not_found"
            assert b"CANARY" not in response.content

    assert Contact.objects.get().name == CANARIES[3]
    assert Group.objects.get().name == CANARIES[5]
    assert not ConversationEntry.objects.filter(read_at__isnull=False).exists()
