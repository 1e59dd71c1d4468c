"""Every URL has an explicit access rule, and no id crosses organisations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from tmc.api.models import ApiKey, WebhookDelivery, WebhookEndpoint
from tmc.api.services import api_key_create
from tmc.boomerang.answers import Kind
from tmc.boomerang.models import KeywordRule, Ticket
from tmc.boomerang.services import (
    keyword_rule_create,
    numbers_add,
    question_create,
    question_send,
)
from tmc.contacts.importing import import_prepare
from tmc.contacts.models import Contact, Group
from tmc.contacts.services import ContactDetails, contact_create, opt_out_add_by_user
from tmc.identity.access import ACCESS_ATTRIBUTE
from tmc.identity.models import RememberedDevice, User, UserSession
from tmc.messaging.campaigns import campaign_send
from tmc.messaging.models import (
    Campaign,
    InboundMessage,
    Message,
    MessageTemplate,
    Schedule,
    VerifiedNumber,
)
from tmc.messaging.scheduling import When, schedule_create
from tmc.messaging.services import message_send, message_template_create
from tmc.notifications.models import Notification
from tmc.testing import Tenant, signed_in_client

CANARIES = [
    "CANARY-BODY-7731",
    "+447400999111",
    "+44 7400 999111",
    "Canary Person",
    "+447400999222",
    "Canary Group",
    "canary-file.csv",
    "Canary Question",
    "CANARY-TEMPLATE-BODY-5519",
    "Canary Template",
]


def _patterns(
    resolvers: list[Any], prefix: str = "", namespace: str = ""
) -> Iterator[tuple[str, str, URLPattern]]:
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if entry.namespace else namespace
            yield from _patterns(
                entry.url_patterns, prefix + str(entry.pattern), inner.strip(":")
            )
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}".strip(":") if entry.name else ""
            yield prefix + str(entry.pattern), name, entry


ALL_PATTERNS = list(_patterns(get_resolver().url_patterns))


@pytest.mark.parametrize(
    ("route", "name", "pattern"), ALL_PATTERNS, ids=[p[0] or "/" for p in ALL_PATTERNS]
)
def test_every_view_declares_its_access_rule(
    route: str, name: str, pattern: URLPattern
) -> None:
    """Policy: access is decided per view, never left to chance."""
    rule = getattr(pattern.callback, ACCESS_ATTRIBUTE, None)

    assert rule is not None, f"{route} ({name}) has no access rule"
    assert rule.split(":")[0] in {"public", "signed-in", "control", "staff", "api-key"}


# --- the access matrix ---------------------------------------------------------


def _other_organisations_objects(b: Tenant) -> dict[str, dict[str, int]]:
    """One object of each kind that organisation B owns, keyed by URL name."""
    message = message_send(user=b.user, recipient="07400 999111", body=CANARIES[0])
    campaign = campaign_send(user=b.user, numbers_text="07400 999111", body=CANARIES[0])
    User.objects.filter(pk=b.user.pk).update(full_name=CANARIES[3])
    signed_in_client(b.user)  # gives b.user a session
    session = UserSession.objects.filter(user=b.user).first()
    assert session is not None
    device = RememberedDevice.objects.create(
        user=b.user, name="Canary phone", token_hash="0" * 64
    )
    notice = Notification.objects.create(
        organisation=b.organisation,
        recipient=b.user,
        kind="new_device",
        title=CANARIES[0],
    )
    group = Group.objects.create(organisation=b.organisation, name=CANARIES[5])
    contact = contact_create(
        user=b.user,
        number="07400 999111",
        details=ContactDetails(name=CANARIES[3], email="canary@example.com"),
        group_ids=[group.pk],
    )
    opt_out_add_by_user(user=b.user, number=CANARIES[4])
    job = import_prepare(
        user=b.user,
        file_name=CANARIES[6],
        data=b"Mobile,Name\n07400 999111,Canary Person\n",
        encoding="utf-8",
    )
    numbers_add(numbers=["+447400900001"])
    question = question_create(user=b.user, title=CANARIES[7], kind=Kind.YES_NO)
    asked = question_send(
        user=b.user, recipient="07400 999111", body=CANARIES[0], question=question
    )
    asked_ticket = Ticket.objects.get(message=asked)
    (dedicated,) = numbers_add(numbers=["+447400900077"], organisation=b.organisation)
    rule = keyword_rule_create(
        user=b.controller, number=dedicated, keyword="CANARY", reply=CANARIES[0]
    )
    template = message_template_create(
        user=b.user, name=CANARIES[9], body=f"{CANARIES[8]} {{first_name}}"
    )
    schedule = schedule_create(
        user=b.user,
        when=When(
            repeat=Schedule.Repeat.ONCE,
            run_at=timezone.now() + timedelta(days=1),
        ),
        numbers_text="07400 999111",
        body=CANARIES[0],
    )
    verified = VerifiedNumber(organisation=b.organisation)
    verified.seal(number=CANARIES[1])
    verified.save()
    api_key = api_key_create(
        actor=None, user=b.user, name=CANARIES[3], scopes=["send"]
    ).key
    endpoint = WebhookEndpoint(
        organisation=b.organisation,
        url="https://hooks.example.com/canary",
        events=["message.status"],
        created_by=b.controller,
    )
    endpoint.secret_seal("whsec_canary")
    endpoint.save()
    dead = WebhookDelivery(
        organisation=b.organisation,
        endpoint=endpoint,
        event="message.status",
        state=WebhookDelivery.State.DEAD,
    )
    dead.seal(body=CANARIES[0])
    dead.save()
    return {
        "api:key_revoke": {"key_id": api_key.pk},
        "accounts:verified_number": {"number_id": verified.pk},
        "api:webhook_rotate": {"endpoint_id": endpoint.pk},
        "api:webhook_delete": {"endpoint_id": endpoint.pk},
        "api:webhook_resend": {"delivery_id": dead.pk},
        "messaging:schedule": {"schedule_id": schedule.pk},
        "messaging:schedule_edit": {"schedule_id": schedule.pk},
        "messaging:schedule_cancel": {"schedule_id": schedule.pk},
        "boomerang:results": {"question_id": question.pk},
        "boomerang:export": {"question_id": question.pk},
        "simulator:reply": {"message_id": asked.pk},
        "boomerang:conversation": {"ticket_id": asked_ticket.pk},
        "boomerang:keyword_delete": {"rule_id": rule.pk},
        "contacts:edit": {"contact_id": contact.pk},
        "contacts:delete": {"contact_id": contact.pk},
        "contacts:group_edit": {"group_id": group.pk},
        "contacts:group_delete": {"group_id": group.pk},
        "contacts:import_mapping": {"job_id": job.pk},
        "contacts:import_progress": {"job_id": job.pk},
        "messaging:detail": {"message_id": message.pk},
        "messaging:template_edit": {"template_id": template.pk},
        "messaging:template_delete": {"template_id": template.pk},
        "messaging:campaign": {"campaign_id": campaign.pk},
        "messaging:campaign_cancel": {"campaign_id": campaign.pk},
        "notifications:open": {"notification_id": notice.pk},
        "identity:user_edit": {"user_id": b.user.pk},
        "identity:user_unlock": {"user_id": b.user.pk},
        "identity:user_device_revoke": {"user_id": b.user.pk, "device_id": device.pk},
        "identity:session_end": {"session_id": session.pk},
        "identity:device_revoke": {"device_id": device.pk},
    }


def test_the_matrix_covers_every_url_that_takes_an_id() -> None:
    """A new URL with an object id must join the matrix below."""
    with_ids = {
        name
        for route, name, _ in ALL_PATTERNS
        # The API has its own matrix (tests/access/test_api_rules.py).
        if "<" in route and not name.startswith(("staff:", "api-v1:"))
    }
    covered = {
        "accounts:verified_number",
        "api:key_revoke",
        "api:webhook_rotate",
        "api:webhook_delete",
        "api:webhook_resend",
        "boomerang:results",
        "boomerang:export",
        "simulator:reply",
        "boomerang:conversation",
        "boomerang:keyword_delete",
        "contacts:edit",
        "contacts:delete",
        "contacts:group_edit",
        "contacts:group_delete",
        "contacts:import_mapping",
        "contacts:import_progress",
        "messaging:detail",
        "messaging:template_edit",
        "messaging:template_delete",
        "messaging:campaign",
        "messaging:campaign_cancel",
        "messaging:schedule",
        "messaging:schedule_edit",
        "messaging:schedule_cancel",
        "identity:user_edit",
        "identity:user_unlock",
        "identity:user_device_revoke",
        "identity:session_end",
        "identity:device_revoke",
        "notifications:open",
        # Twilio's shapes: the account is the key's, a message is found by
        # its uid within the key's organisation (api/tests/test_twilio.py).
        "twilio:message_create",
        "twilio:message_fetch",
        # Reset links carry a signed token, not an object id.
        "identity:password_reset_confirm",
        # A provider's name, not an object id; callbacks are checked by
        # signature (tmc.gateways.http.views).
        "http_gateway:reports",
        "http_gateway:inbound",
        "vonage_gateway:reports",
        "vonage_gateway:inbound",
    }

    assert with_ids <= covered, f"not in the access matrix: {with_ids - covered}"


def _role_may_open(rule: str, role: str) -> bool:
    if not rule.startswith("control"):
        return True
    if role == "user":
        return False
    return ":controller" not in rule or role == "controller"


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_each_role_gets_404_for_another_organisations_ids(
    tenant_a: Tenant, tenant_b: Tenant, role: str
) -> None:
    """Clients see only their own organisation's data, whatever the id."""
    targets = _other_organisations_objects(tenant_b)
    actor = getattr(tenant_a, role)
    client = tenant_a.client_for(actor, second_factor=role != "user")

    for name, kwargs in targets.items():
        url = reverse(name, kwargs=kwargs)
        rule = getattr(resolve(url).func, ACCESS_ATTRIBUTE)
        # A role the view refuses outright gets 403 before any lookup, which
        # reveals nothing; every other role must get 404.
        expected = 404 if _role_may_open(rule, role) else 403
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code == 405:
                continue
            assert response.status_code == expected, (name, method)
            assert b"CANARY" not in response.content

    # And nothing changed on B's side.
    assert Message.objects.filter(organisation=tenant_b.organisation).count() == 3
    assert not InboundMessage.objects.exists()
    assert Schedule.objects.get().status == Schedule.Status.SCHEDULED
    assert Campaign.objects.filter(organisation=tenant_b.organisation).count() == 1
    assert not Campaign.objects.filter(status=Campaign.Status.CANCELLED).exists()
    assert Contact.objects.filter(organisation=tenant_b.organisation).count() == 1
    assert KeywordRule.objects.filter(organisation=tenant_b.organisation).exists()
    assert Group.objects.filter(organisation=tenant_b.organisation).count() == 1
    template = MessageTemplate.objects.get(organisation=tenant_b.organisation)
    assert (template.name, template.body) == (
        CANARIES[9],
        f"{CANARIES[8]} {{first_name}}",
    )
    assert not RememberedDevice.objects.filter(revoked_at__isnull=False).exists()
    assert not ApiKey.objects.filter(revoked_at__isnull=False).exists()
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.previous_until, endpoint.secrets()) == (None, ["whsec_canary"])
    assert WebhookDelivery.objects.get().state == WebhookDelivery.State.DEAD
    assert not UserSession.objects.filter(ended_at__isnull=False).exists()
    assert not Notification.objects.filter(read_at__isnull=False).exists()
    assert not VerifiedNumber.objects.filter(attempts__gt=0).exists()


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_a_template_chosen_by_query_is_not_found_across_organisations(
    tenant_a: Tenant, tenant_b: Tenant, role: str
) -> None:
    """``?template=`` ids (compose, and its htmx fill-in) are scoped too."""
    theirs = _other_organisations_objects(tenant_b)["messaging:template_edit"]
    client = tenant_a.client_for(getattr(tenant_a, role))

    for name in ("messaging:compose", "messaging:template_use"):
        for guess in (str(theirs["template_id"]), "x1", "-1"):
            response = client.get(reverse(name), {"template": guess})
            assert response.status_code == 404, (name, guess)
            assert b"CANARY" not in response.content


STAFF_PATTERNS = [
    (route, name) for route, name, _ in ALL_PATTERNS if name.startswith("staff:")
]


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_client_users_never_reach_staff_pages(
    tenant_a: Tenant, tenant_b: Tenant, role: str
) -> None:
    """Staff pages answer only to a staff session, never to a client one."""
    client = tenant_a.client_for(getattr(tenant_a, role), second_factor=role != "user")
    ids = {
        "organisation_id": tenant_a.organisation.pk,
        "user_id": tenant_a.user.pk,
        "message_id": 1,
        "member_id": 1,
        "number_id": 1,
        "provider_id": 1,
        "package_id": 1,
        "kind": "smpp",
    }

    for route, name in STAFF_PATTERNS:
        if name == "staff:login":
            continue
        kwargs = {
            key: value
            for key, value in ids.items()
            if f"<int:{key}>" in route or f"<slug:{key}>" in route
        }
        url = reverse(name, kwargs=kwargs)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code == 405:
                continue
            assert response.status_code == 302, (name, method)
            assert response["Location"] == reverse("staff:login")


def _pages_without_ids() -> list[str]:
    return [
        reverse(name)
        for route, name, pattern in ALL_PATTERNS
        if name
        and "<" not in route
        and not name.startswith(("identity:password_reset", "staff:"))
    ]


@pytest.mark.parametrize("role", ["controller", "administrator", "user"])
def test_canaries_of_another_organisation_never_appear(
    tenant_a: Tenant, tenant_b: Tenant, role: str
) -> None:
    """Nothing of organisation B shows on any page organisation A can open."""
    _other_organisations_objects(tenant_b)
    message_send(user=tenant_a.user, recipient="07400 123456", body="Acme text")
    actor = getattr(tenant_a, role)
    client: Client = tenant_a.client_for(actor, second_factor=role != "user")
    own = Message.objects.filter(organisation=tenant_a.organisation).get()
    pages = [*_pages_without_ids(), reverse("messaging:detail", args=[own.pk])]

    for page in pages:
        if page in {reverse("identity:logout"), reverse("identity:keepalive")}:
            continue
        response = client.get(page, follow=True)
        content = (
            b"".join(getattr(response, "streaming_content", []))
            if response.streaming
            else response.content
        )
        for canary in CANARIES:
            assert canary.encode() not in content, (page, canary)
