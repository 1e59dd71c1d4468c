"""The address book's pages, driven through HTTP as a person would."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tmc.audit.models import Event
from tmc.contacts.models import Contact, Group, ImportJob, OptOut
from tmc.contacts.services import ContactDetails, contact_create
from tmc.identity.models import User
from tmc.testing import Tenant

FULL_E164 = "+447400123456"
FULL_SHOWN = "+44 7400 123456"
MASKED_SHOWN = "+44 7400 1•••56"


def _add(
    tenant: Tenant, number: str = FULL_E164, name: str = "Ada Lovelace"
) -> Contact:
    return contact_create(
        user=tenant.user, number=number, details=ContactDetails(name=name)
    )


def _restrict(user: User, **fields: Any) -> None:
    User.objects.filter(pk=user.pk).update(**fields)


def test_a_user_adds_a_contact_in_a_group_and_finds_it_by_number(
    tenant_a: Tenant,
) -> None:
    group = Group.objects.create(organisation=tenant_a.organisation, name="Drivers")
    client = tenant_a.client_for(tenant_a.user)

    response = client.post(
        "/contacts/new/",
        {
            "number": "07400 123456",
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "custom_fields": "shift_day=Saturday",
            "groups": [group.pk],
        },
    )

    assert response.status_code == 302
    contact = Contact.objects.for_user(tenant_a.user).get()
    assert (contact.number, contact.fields) == (FULL_E164, {"shift_day": "Saturday"})
    assert list(contact.groups.all()) == [group]
    found = client.get("/contacts/", {"number": "+44 7400 123456"}).content.decode()
    assert "Ada Lovelace" in found
    assert client.get(f"/contacts/?group={group.pk}").content.decode().count(
        "contact-"
    ) == found.count("contact-")


def test_a_bad_number_is_shown_next_to_the_field_and_nothing_is_added(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post("/contacts/new/", {"number": "hello", "name": "Kept Name"})

    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_number_error"' in page
    assert 'value="Kept Name"' in page
    assert not Contact.objects.exists()


def test_a_duplicate_number_is_refused_on_the_form(tenant_a: Tenant) -> None:
    _add(tenant_a)
    client = tenant_a.client_for(tenant_a.user)

    response = client.post("/contacts/new/", {"number": "07400123456", "name": "B"})

    assert "already in the address book" in response.content.decode()
    assert Contact.objects.count() == 1


def test_editing_with_an_empty_number_keeps_it_and_never_shows_it_masked_users(
    tenant_a: Tenant,
) -> None:
    """Masking: a user without full numbers never gets the number in the page."""
    contact = _add(tenant_a)
    _restrict(tenant_a.user, can_view_full_numbers=False)
    client = tenant_a.client_for(tenant_a.user)

    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    listing = client.get("/contacts/").content.decode()
    saved = client.post(f"/contacts/{contact.pk}/", {"number": "", "name": "Ada King"})

    for shown in (page, listing):
        assert FULL_E164 not in shown
        assert FULL_SHOWN not in shown
        assert MASKED_SHOWN in shown
    assert saved.status_code == 302
    contact.refresh_from_db()
    assert (contact.name, contact.number) == ("Ada King", FULL_E164)


def test_a_user_with_full_numbers_sees_them(tenant_a: Tenant) -> None:
    contact = _add(tenant_a)
    client = tenant_a.client_for(tenant_a.controller)

    assert FULL_SHOWN in client.get(f"/contacts/{contact.pk}/").content.decode()
    assert FULL_SHOWN in client.get("/contacts/").content.decode()


def test_contacts_and_groups_of_another_organisation_answer_404(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = _add(tenant_b)
    their_group = Group.objects.create(organisation=tenant_b.organisation, name="G")
    client = tenant_a.client_for(tenant_a.controller)

    for path in (
        f"/contacts/{theirs.pk}/",
        f"/contacts/{theirs.pk}/delete/",
        f"/contacts/groups/{their_group.pk}/",
        f"/contacts/groups/{their_group.pk}/delete/",
        f"/contacts/export/?group={their_group.pk}",
    ):
        assert client.get(path).status_code == 404, path
    assert client.post(f"/contacts/{theirs.pk}/delete/").status_code == 404
    assert Contact.objects.filter(pk=theirs.pk).exists()


def test_deleting_a_contact_asks_first_then_removes_it(tenant_a: Tenant) -> None:
    contact = _add(tenant_a)
    client = tenant_a.client_for(tenant_a.user)

    asked = client.get(f"/contacts/{contact.pk}/delete/")
    assert Contact.objects.filter(pk=contact.pk).exists()
    done = client.post(f"/contacts/{contact.pk}/delete/")

    assert asked.status_code == 200
    assert done.status_code == 302
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert Event.objects.filter(action="contact.deleted").count() == 1


def test_groups_are_added_renamed_counted_and_deleted(tenant_a: Tenant) -> None:
    contact = _add(tenant_a)
    client = tenant_a.client_for(tenant_a.user)

    client.post("/contacts/groups/new/", {"name": "Drivers", "description": ""})
    group = Group.objects.get(organisation=tenant_a.organisation)
    contact.groups.add(group)
    client.post(f"/contacts/groups/{group.pk}/", {"name": "Night drivers"})
    listing = client.get("/contacts/groups/").content.decode()
    client.post(f"/contacts/groups/{group.pk}/delete/")

    assert "Night drivers" in listing
    assert f'?group={group.pk}">1</a>' in listing
    assert not Group.objects.exists()
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_export_is_refused_without_the_permission_and_offered_with_it(
    tenant_a: Tenant,
) -> None:
    """Export needs the export permission, on the page and by direct URL."""
    _add(tenant_a)
    _restrict(tenant_a.user, can_export=False)
    refused = tenant_a.client_for(tenant_a.user)
    allowed = tenant_a.client_for(tenant_a.controller)

    assert "/contacts/export/" not in refused.get("/contacts/").content.decode()
    assert refused.get("/contacts/export/").status_code == 403
    assert "/contacts/export/" in allowed.get("/contacts/").content.decode()
    response = allowed.get("/contacts/export/")
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))

    assert response.status_code == 200
    # A leading "+" would start a formula in a spreadsheet, so it is quoted.
    assert rows[1][:2] == ["Ada Lovelace", f"'{FULL_SHOWN}"]
    assert Event.objects.filter(action="contacts.exported").count() == 1


def _upload(client: Any, text: str, name: str = "people.csv") -> Any:
    return client.post(
        "/contacts/import/",
        {
            "file": SimpleUploadedFile(name, text.encode(), content_type="text/csv"),
            "encoding": "utf-8",
        },
    )


def test_a_csv_is_uploaded_mapped_and_imported_with_problems_listed(
    tenant_a: Tenant, committed: Any
) -> None:
    client = tenant_a.client_for(tenant_a.user)
    text = (
        "Mobile,Name,Shift day\n"
        "07400 111111,Ann,Sat\n"
        "not a number,Bob,Sun\n"
        "+447400111111,Ann Again,Mon\n"
        "07400 222222,Cat,Tue\n"
    )

    uploaded = _upload(client, text)
    job = ImportJob.objects.get()
    mapping_page = client.get(uploaded["Location"]).content.decode()
    keep = next(i for i, header in enumerate(job.headers) if header == "Shift day")
    with committed(execute=True):
        mapped = client.post(
            uploaded["Location"],
            {
                "number": "Mobile",
                "name": "Name",
                f"keep_{keep}": "on",
                f"key_{keep}": "shift_day",
            },
        )
    progress = client.get(mapped["Location"]).content.decode()

    assert "Shift day" in mapping_page
    job.refresh_from_db()
    assert job.status == ImportJob.Status.DONE
    assert (job.created_count, job.merged_count, job.invalid_count) == (2, 1, 1)
    assert 'data-testid="import-status">Done' in progress
    assert '<td class="number">3</td>' in progress
    assert Contact.objects.for_user(tenant_a.user).count() == 2
    assert {c.fields.get("shift_day") for c in Contact.objects.all()} == {
        "Mon",
        "Tue",
    }


def test_the_progress_poll_gets_only_the_progress_part(tenant_a: Tenant) -> None:
    client = tenant_a.client_for(tenant_a.user)
    _upload(client, "Mobile\n07400 111111\n")
    job = ImportJob.objects.get()

    polled = client.get(
        f"/contacts/import/{job.pk}/progress/",
        headers={"HX-Request": "true", "X-TMC-Background": "1"},
    ).content.decode()

    assert polled.lstrip().startswith('<section id="import-progress"')
    assert "<html" not in polled


def test_a_file_that_is_not_csv_is_refused_next_to_the_field(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = _upload(client, "", name="empty.csv")

    assert response.status_code == 200
    assert 'id="id_file_error"' in response.content.decode()
    assert not ImportJob.objects.exists()


def test_another_users_import_answers_404_to_a_user_but_not_a_manager(
    tenant_a: Tenant,
) -> None:
    _upload(tenant_a.client_for(tenant_a.controller), "Mobile\n07400 111111\n")
    job = ImportJob.objects.get()
    path = f"/contacts/import/{job.pk}/progress/"

    assert tenant_a.client_for(tenant_a.user).get(path).status_code == 404
    assert tenant_a.client_for(tenant_a.administrator).get(path).status_code == 200


@pytest.mark.parametrize("who", ["user", "controller"])
def test_a_number_added_to_the_opt_out_list_is_listed_masked_by_permission(
    tenant_a: Tenant, who: str
) -> None:
    _restrict(tenant_a.user, can_view_full_numbers=False)
    client = tenant_a.client_for(getattr(tenant_a, who))

    added = client.post("/contacts/opt-outs/", {"number": "07400 123456"})
    page = client.get("/contacts/opt-outs/").content.decode()

    assert added.status_code == 302
    assert OptOut.objects.for_user(tenant_a.user).count() == 1
    if who == "user":
        assert MASKED_SHOWN in page
        assert FULL_SHOWN not in page
    else:
        assert FULL_SHOWN in page


def test_a_bad_opt_out_number_is_refused_next_to_the_field(
    tenant_a: Tenant,
) -> None:
    client = tenant_a.client_for(tenant_a.user)

    response = client.post("/contacts/opt-outs/", {"number": "call me"})

    assert 'id="id_number_error"' in response.content.decode()
    assert not OptOut.objects.exists()
