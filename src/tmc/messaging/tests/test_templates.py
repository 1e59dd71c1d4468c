"""Saved templates: shared in an organisation, sealed at rest, merged on send."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tmc.audit.models import Event
from tmc.contacts.services import ContactDetails, contact_create
from tmc.messaging import services
from tmc.messaging.models import Message, MessageTemplate
from tmc.messaging.services import message_template_create
from tmc.testing import SENDER, CommitCapture, Tenant

BODY = "Hi {first_name}, can you work {shift_day}? Reply YES or NO."
NUMBER = "07400 123456"


def _text(content: bytes) -> str:
    words = re.sub(r"<[^>]+>", " ", content.decode())
    return " ".join(html.unescape(words).split())


def _save(client: Client, name: str, body: str, template_id: int | None = None) -> Any:
    url = (
        reverse("messaging:template_edit", args=[template_id])
        if template_id
        else reverse("messaging:template_new")
    )
    return client.post(url, {"name": name, "body": body})


# --- the pages -----------------------------------------------------------------


def test_a_template_is_added_listed_and_shared_with_the_organisation(
    tenant_a: Tenant,
) -> None:
    author = tenant_a.client_for(tenant_a.user)
    colleague = tenant_a.client_for(tenant_a.administrator)

    response = _save(author, "Shift offer", BODY)

    assert response.status_code == 302
    assert response["Location"] == reverse("messaging:templates")
    template = MessageTemplate.objects.get()
    assert (template.name, template.body) == ("Shift offer", BODY)
    assert template.created_by == tenant_a.user
    listed = colleague.get(reverse("messaging:templates"))
    assert f'id="template-{template.pk}"' in listed.content.decode()
    assert "Hi {first_name}, can you work" in _text(listed.content)


def test_editing_changes_name_and_body_for_everyone(tenant_a: Tenant) -> None:
    template = message_template_create(user=tenant_a.user, name="Shift", body=BODY)
    colleague = tenant_a.client_for(tenant_a.administrator)

    form = colleague.get(reverse("messaging:template_edit", args=[template.pk]))
    response = _save(colleague, "Weekend shift", "Free {shift_day}?", template.pk)

    assert 'value="Shift"' in form.content.decode()
    assert "Hi {first_name}" in html.unescape(form.content.decode())
    assert response.status_code == 302
    template.refresh_from_db()
    del template.body  # the cached plaintext, to read it from the row again
    assert (template.name, template.body) == ("Weekend shift", "Free {shift_day}?")


def test_deleting_asks_first_then_removes_it(tenant_a: Tenant) -> None:
    template = message_template_create(user=tenant_a.user, name="Shift", body=BODY)
    client = tenant_a.client_for(tenant_a.user)
    url = reverse("messaging:template_delete", args=[template.pk])

    asked = client.get(url)
    assert MessageTemplate.objects.exists()
    done = client.post(url)

    assert "Delete the template Shift?" in _text(asked.content)
    assert done.status_code == 302
    assert not MessageTemplate.objects.exists()


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("", BODY, "Name the template."),
        ("x" * 81, BODY, "The name is longer than 80 characters."),
        ("shift OFFER", BODY, "There is a template with this name already."),
        ("New", "", "Write the message."),
        ("New", "Hi {first name}", "The brace at character 4 does not make"),
        ("New", "Use {{ or } for a brace", "The brace at character 11"),
        ("New", "x" * 1000, "As written the message needs 7 parts"),
    ],
)
def test_a_bad_template_is_refused_beside_its_field(
    tenant_a: Tenant, name: str, body: str, error: str
) -> None:
    message_template_create(user=tenant_a.user, name="Shift offer", body=BODY)
    client = tenant_a.client_for(tenant_a.user)

    response = _save(client, name, body)

    assert response.status_code == 200
    assert error in html.unescape(response.content.decode())
    assert b'role="alert"' in response.content
    assert MessageTemplate.objects.count() == 1
    assert Event.objects.filter(action="template.created").count() == 1


def test_two_saves_of_one_name_at_once_leave_one_template(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique constraint settles a race the name check cannot see."""
    message_template_create(user=tenant_a.user, name="Shift", body=BODY)
    # As if the other save committed between this one's check and its insert.
    monkeypatch.setattr(
        services, "_template_checked", lambda user, *, name, **kwargs: name
    )

    with pytest.raises(ValidationError) as refused:
        message_template_create(user=tenant_a.administrator, name="SHIFT", body=BODY)

    assert refused.value.message_dict == {
        "name": ["There is a template with this name already."]
    }
    assert MessageTemplate.objects.count() == 1
    assert Event.objects.filter(action="template.created").count() == 1


def test_the_same_name_may_be_kept_when_editing(tenant_a: Tenant) -> None:
    template = message_template_create(user=tenant_a.user, name="Shift", body=BODY)
    client = tenant_a.client_for(tenant_a.user)

    response = _save(client, "Shift", "New words", template.pk)

    assert response.status_code == 302


def test_another_organisation_gets_404_and_its_list_stays_empty(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    template = message_template_create(
        user=tenant_a.user, name="Acme only", body="Private words"
    )
    outsider = tenant_b.client_for(tenant_b.controller)

    for name in ("messaging:template_edit", "messaging:template_delete"):
        url = reverse(name, args=[template.pk])
        for response in (outsider.get(url), outsider.post(url, {"name": "x"})):
            assert response.status_code == 404
            assert b"Private words" not in response.content
    listed = outsider.get(reverse("messaging:templates"))
    assert b"Acme only" not in listed.content
    assert MessageTemplate.objects.get().name == "Acme only"


def test_the_list_reads_a_fixed_number_of_queries(
    tenant_a: Tenant, committed: CommitCapture
) -> None:
    """No query per template: the page costs the same for 1 row as for 6."""
    client = tenant_a.client_for(tenant_a.user)
    message_template_create(user=tenant_a.user, name="T0", body=BODY)
    with committed(execute=True):  # keys unwrapped and cached, as after commit
        client.get(reverse("messaging:templates"))

    with CaptureQueriesContext(connection) as one:
        client.get(reverse("messaging:templates"))
    for i in range(1, 6):
        message_template_create(user=tenant_a.controller, name=f"T{i}", body=BODY)
    with CaptureQueriesContext(connection) as six:
        response = client.get(reverse("messaging:templates"))

    assert response.content.count(b'id="template-') == 6
    assert len(six) == len(one) <= 8


# --- sealed at rest, and out of the activity log -----------------------------------


def test_the_body_is_sealed_in_the_database(tenant_a: Tenant) -> None:
    secret = "Door code 4471, tell {first_name} only"
    template = message_template_create(user=tenant_a.user, name="Door", body=secret)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM messaging_messagetemplate WHERE id = %s", [template.pk]
        )
        row = cursor.fetchone()

    stored = " ".join(str(value) for value in row)
    assert "Door code" not in stored
    assert "4471" not in stored
    assert MessageTemplate.objects.get().body == secret


def test_every_change_is_logged_by_id_never_with_the_body(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)
    _save(client, "Shift", "Secret words {first_name}")
    template = MessageTemplate.objects.get()
    _save(client, "Shift", "Other secret words", template.pk)
    _save(client, "Shift", "Other secret words", template.pk)  # no change
    client.post(reverse("messaging:template_delete", args=[template.pk]))

    events = list(Event.objects.filter(action__startswith="template.").order_by("id"))

    assert [e.action for e in events] == [
        "template.created",
        "template.updated",
        "template.deleted",
    ]
    assert all(e.target_id == str(template.pk) for e in events)
    assert all(e.actor == tenant_a.user for e in events)
    assert events[1].details == {"template": template.pk, "changed": ["body"]}
    assert "secret" not in json.dumps([e.details for e in events]).lower()


# --- on the compose page ---------------------------------------------------------


def test_the_compose_page_offers_the_organisations_templates(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ours = message_template_create(user=tenant_a.user, name="Shift offer", body=BODY)
    message_template_create(user=tenant_b.user, name="Globex only", body="Theirs")
    client = tenant_a.client_for(tenant_a.user)

    page = client.get(reverse("messaging:compose")).content.decode()

    assert "Use a template" in page
    assert f'<option value="{ours.pk}">Shift offer</option>' in page
    assert "Globex only" not in page


def test_choosing_a_template_fills_the_message_and_its_count(
    tenant_a: Tenant,
) -> None:
    template = message_template_create(user=tenant_a.user, name="Shift", body=BODY)
    client = tenant_a.client_for(tenant_a.user)

    response = client.get(
        reverse("messaging:template_use"),
        {"template": template.pk},
        headers={"HX-Request": "true"},
    )

    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert 'id="body-field"' in content
    assert f">{BODY}</textarea>" in html.unescape(content)
    assert 'data-encoding="GSM-7" data-parts="1"' in content
    assert "{first_name}, {shift_day}" in _text(response.content)


def test_choosing_no_template_leaves_the_message_alone(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.get(reverse("messaging:template_use"), {"template": ""})

    assert response.status_code == 204


def test_use_from_the_list_opens_compose_with_the_body(tenant_a: Tenant) -> None:
    template = message_template_create(user=tenant_a.user, name="Shift", body=BODY)
    client = tenant_a.client_for(tenant_a.user)

    page = client.get(reverse("messaging:compose"), {"template": template.pk})

    assert f">{BODY}</textarea>" in html.unescape(page.content.decode())


# --- merge fields when sending ----------------------------------------------------


@pytest.fixture
def ada(tenant_a: Tenant) -> None:
    contact_create(
        user=tenant_a.user,
        number=NUMBER,
        details=ContactDetails(name="Ada Lovelace", fields={"shift_day": "Saturday"}),
    )


def _compose(tenant: Tenant, body: str, recipient: str = NUMBER) -> Any:
    client = tenant.client_for(tenant.user)
    return client.post(
        reverse("messaging:compose"),
        {"recipient": recipient, "sender": SENDER, "body": body},
    )


def test_merge_fields_are_filled_from_the_recipients_contact(
    tenant_a: Tenant, ada: None
) -> None:
    response = _compose(tenant_a, BODY)

    assert response.status_code == 302
    message = Message.objects.get()
    assert message.body == "Hi Ada, can you work Saturday? Reply YES or NO."
    assert (message.encoding, message.parts) == ("GSM-7", 1)


def test_a_missing_value_refuses_the_text_naming_the_field(
    tenant_a: Tenant, ada: None
) -> None:
    response = _compose(tenant_a, "Hi {first_name}, at {depot}?")

    assert response.status_code == 200
    assert "No value for {depot}. Add it to the contact" in html.unescape(
        response.content.decode()
    )
    assert not Message.objects.exists()


def test_merge_fields_for_a_number_outside_the_address_book_are_refused(
    tenant_a: Tenant, ada: None
) -> None:
    response = _compose(tenant_a, BODY, recipient="07400 765432")

    page = html.unescape(response.content.decode())
    assert "No value for {first_name}, {shift_day}." in page
    assert "this number is not in it" in page
    assert not Message.objects.exists()


def test_escaped_braces_are_sent_as_single_braces(tenant_a: Tenant) -> None:
    response = _compose(tenant_a, "Code {{A1}} at the gate")

    assert response.status_code == 302
    assert Message.objects.get().body == "Code {A1} at the gate"


def test_a_stray_brace_is_refused_on_compose_and_shown_while_typing(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    refused = _compose(tenant_a, "Gate {A1")
    live = client.post(reverse("messaging:segments"), {"body": "Gate {A1"})

    assert "The brace at character 6" in html.unescape(refused.content.decode())
    assert 'data-testid="merge-problem"' in live.content.decode()
    assert not Message.objects.exists()
