"""The address book's rules: numbers, duplicates, groups, export, the log."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tmc.audit.models import Event
from tmc.contacts.models import Contact, Group
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    contact_delete,
    contact_find,
    contact_update,
    contacts_export,
    group_create,
    group_delete,
)
from tmc.testing import Tenant


def _add(tenant: Tenant, number: str = "07400 123456", **details: str) -> Contact:
    return contact_create(
        user=tenant.user,
        number=number,
        details=ContactDetails(
            name=details.get("name", "Ada Lovelace"),
            email=details.get("email", ""),
        ),
    )


def test_a_contact_is_stored_in_e164_and_read_back(tenant_a: Tenant) -> None:
    contact = _add(tenant_a, "07400 123456", name="Ada Lovelace")

    stored = Contact.objects.get(pk=contact.pk)
    assert stored.number == "+447400123456"
    assert stored.name == "Ada Lovelace"
    assert stored.merge_values()["first_name"] == "Ada"
    assert contact_find(tenant_a.user, "+44 7400 123456") == stored


def test_a_number_already_in_the_book_is_refused_and_nothing_is_added(
    tenant_a: Tenant,
) -> None:
    _add(tenant_a, "07400 123456")

    with pytest.raises(ValidationError) as refused:
        _add(tenant_a, "+447400123456", name="Someone else")

    assert "already in the address book" in str(refused.value.message_dict["number"])
    assert Contact.objects.for_user(tenant_a.user).count() == 1


def test_the_same_number_may_be_in_two_organisations(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    _add(tenant_a, "07400 123456")
    _add(tenant_b, "07400 123456")

    assert contact_find(tenant_a.user, "07400 123456") is not None
    assert contact_find(tenant_b.user, "07400 123456") is not None
    assert contact_find(tenant_a.user, "07400 123456") != contact_find(
        tenant_b.user, "07400 123456"
    )


@pytest.mark.parametrize(
    ("number", "details", "field"),
    [
        ("hello", ContactDetails(name="A"), "number"),
        ("020 7946 0000", ContactDetails(name="A"), "number"),
        ("07400 123456", ContactDetails(name="A" * 151), "name"),
        ("07400 123456", ContactDetails(email="not-an-email"), "email"),
        ("07400 123456", ContactDetails(fields={"Bad Key": "x"}), "fields"),
        ("07400 123456", ContactDetails(fields={"first_name": "x"}), "fields"),
    ],
)
def test_bad_input_is_a_field_error_and_creates_nothing(
    tenant_a: Tenant, number: str, details: ContactDetails, field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        contact_create(user=tenant_a.user, number=number, details=details)

    assert field in refused.value.message_dict
    assert not Contact.objects.exists()
    assert not Event.objects.filter(action="contact.created").exists()


def test_a_contact_can_be_in_many_groups(tenant_a: Tenant) -> None:
    staff = group_create(user=tenant_a.user, name="Weekend staff")
    drivers = group_create(user=tenant_a.user, name="Drivers")
    contact = contact_create(
        user=tenant_a.user,
        number="07400 123456",
        details=ContactDetails(name="Ada"),
        group_ids=[staff.pk, drivers.pk],
    )

    assert set(contact.groups.all()) == {staff, drivers}
    group_delete(user=tenant_a.user, group=drivers)
    assert Contact.objects.filter(pk=contact.pk).exists()
    assert list(Contact.objects.get(pk=contact.pk).groups.all()) == [staff]


def test_another_organisations_group_cannot_be_joined(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    theirs = group_create(user=tenant_b.user, name="Theirs")

    with pytest.raises(ValidationError):
        contact_create(
            user=tenant_a.user,
            number="07400 123456",
            details=ContactDetails(name="Ada"),
            group_ids=[theirs.pk],
        )
    assert not Contact.objects.exists()


def test_group_names_are_unique_per_organisation_whatever_the_case(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    group_create(user=tenant_a.user, name="Drivers")
    group_create(user=tenant_b.user, name="Drivers")

    with pytest.raises(ValidationError):
        group_create(user=tenant_a.user, name="drivers")
    assert Group.objects.count() == 2


def test_changes_are_logged_by_field_name_never_by_value(tenant_a: Tenant) -> None:
    contact = _add(tenant_a, "07400 123456", name="Ada Lovelace")

    contact_update(
        user=tenant_a.user,
        contact=contact,
        number="07400 654321",
        details=ContactDetails(name="Ada King", email="ada@example.com"),
    )
    contact_delete(user=tenant_a.user, contact=contact)

    events = list(
        Event.objects.filter(action__startswith="contact.").order_by("sequence")
    )
    assert [e.action for e in events] == [
        "contact.created",
        "contact.updated",
        "contact.deleted",
    ]
    assert events[1].details == {"changed": ["number", "name", "email"]}
    logged = " ".join(str(e.details) for e in events)
    for secret in ("Ada", "654321", "123456", "example.com"):
        assert secret not in logged


def test_an_empty_number_on_update_keeps_the_number(tenant_a: Tenant) -> None:
    contact = _add(tenant_a, "07400 123456")

    contact_update(
        user=tenant_a.user, contact=contact, details=ContactDetails(name="New")
    )

    stored = Contact.objects.get(pk=contact.pk)
    assert (stored.number, stored.name) == ("+447400123456", "New")


def _export(tenant: Tenant, user: object) -> list[list[str]]:
    text = io.StringIO()
    writer = csv.writer(text)
    for row in contacts_export(user=user):  # type: ignore[arg-type]
        writer.writerow(row)
    return list(csv.reader(io.StringIO(text.getvalue())))


def test_export_needs_the_export_permission_and_logs_nothing_without_it(
    tenant_a: Tenant,
) -> None:
    _add(tenant_a)
    tenant_a.user.can_export = False
    tenant_a.user.save()

    with pytest.raises(PermissionDenied):
        contacts_export(user=tenant_a.user)
    assert not Event.objects.filter(action="contacts.exported").exists()


def test_export_masks_numbers_without_the_full_numbers_permission(
    tenant_a: Tenant,
) -> None:
    _add(tenant_a, "07400 123456", name="Ada")
    exporter = tenant_a.user
    exporter.can_export, exporter.can_view_full_numbers = True, False
    exporter.save()

    rows = _export(tenant_a, exporter)

    assert rows[0][:4] == ["name", "number", "email", "groups"]
    assert "123456" not in rows[1][1].replace(" ", "")
    assert rows[1][1].startswith("'+44 7400 1")
    event = Event.objects.get(action="contacts.exported")
    assert event.details["contacts"] == 1
    assert event.details["full_numbers"] is False


def test_export_defuses_formulas_and_keeps_full_numbers_for_those_allowed(
    tenant_a: Tenant,
) -> None:
    contact_create(
        user=tenant_a.controller,
        number="07400 123456",
        details=ContactDetails(
            name="=cmd|' /C calc'!A0", fields={"note": "@SUM(A1:A2)"}
        ),
    )

    rows = _export(tenant_a, tenant_a.controller)

    assert rows[0] == ["name", "number", "email", "groups", "note"]
    assert rows[1][0] == "'=cmd|' /C calc'!A0"
    assert rows[1][1] == "'+44 7400 123456"
    assert rows[1][4] == "'@SUM(A1:A2)"
