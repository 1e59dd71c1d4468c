"""CSV import: mapping, normalising, merging, reporting, and resuming."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from tmc.audit.models import Event
from tmc.contacts import importing
from tmc.contacts.importing import (
    ImportFileError,
    import_map,
    import_prepare,
    import_run,
)
from tmc.contacts.models import Contact, ImportJob
from tmc.contacts.services import ContactDetails, contact_create, group_create
from tmc.testing import Tenant


def _prepare(tenant: Tenant, text: str, encoding: str = "utf-8") -> ImportJob:
    data = text.encode("utf-8" if encoding == "utf-8" else encoding)
    return import_prepare(
        user=tenant.user, file_name="people.csv", data=data, encoding=encoding
    )


def _import(tenant: Tenant, text: str, **mapped: Any) -> ImportJob:
    job = _prepare(tenant, text)
    import_map(
        user=tenant.user,
        job=job,
        mapping=mapped.pop("mapping", job.mapping),
        group=mapped.pop("group", None),
        enqueue=False,
    )
    return import_run(job_id=job.pk, **mapped)


def _book(tenant: Tenant) -> dict[str, Contact]:
    return {c.number: c for c in Contact.objects.for_user(tenant.user)}


GOOD = (
    "Name,Mobile,Email,Shift day\n"
    "Ada Lovelace,07400 100001,ada@example.com,Saturday\n"
    "Alan Turing,+44 7400 100002,,Sunday\n"
)


def test_headers_are_mapped_by_name_and_other_columns_become_fields(
    tenant_a: Tenant,
) -> None:
    job = _prepare(tenant_a, GOOD)

    assert job.total_rows == 2
    assert job.mapping == {
        "name": "Name",
        "number": "Mobile",
        "email": "Email",
        "fields": {"shift_day": "Shift day"},
    }


def test_rows_are_imported_normalised_with_their_fields(tenant_a: Tenant) -> None:
    job = _import(tenant_a, GOOD)

    assert (job.status, job.created_count, job.invalid_count) == ("done", 2, 0)
    book = _book(tenant_a)
    assert set(book) == {"+447400100001", "+447400100002"}
    ada = book["+447400100001"]
    assert (ada.name, ada.email, ada.fields) == (
        "Ada Lovelace",
        "ada@example.com",
        {"shift_day": "Saturday"},
    )
    event = Event.objects.get(action="contacts.imported")
    assert event.details["created"] == 2
    assert not ImportJob.objects.get(pk=job.pk).file_sealed


def test_invalid_rows_are_reported_by_line_and_skipped(tenant_a: Tenant) -> None:
    text = (
        "Name,Mobile,Email\n"
        "Good,07400 100001,\n"
        "Landline,020 7946 0000,\n"
        "Nonsense,hello,\n"
        "No number,,\n"
        "Bad email,07400 100005,not-an-email\n"
    )

    job = _import(tenant_a, text)

    assert (job.created_count, job.invalid_count) == (1, 4)
    assert job.problems == [
        [3, "Not a mobile number."],
        [4, "Not a phone number."],
        [5, "No number given."],
        [6, "Not a valid email address."],
    ]
    assert "7946" not in str(job.problems)


def test_a_row_shorter_than_the_header_reads_its_missing_cells_as_empty(
    tenant_a: Tenant,
) -> None:
    text = (
        "Mobile,Name,Email,Shift day\n"
        "07400 100001,Ada\n"
        "07400 100002\n"
        "07400 100003,Alan,alan@example.com,Sunday\n"
    )

    job = _import(tenant_a, text)

    assert (job.created_count, job.invalid_count) == (3, 0)
    book = _book(tenant_a)
    assert (book["+447400100001"].name, book["+447400100001"].email) == ("Ada", "")
    assert (book["+447400100002"].name, book["+447400100002"].fields) == ("", {})
    assert book["+447400100003"].fields == {"shift_day": "Sunday"}


def test_an_email_whose_domain_was_accepted_is_still_checked_in_full(
    tenant_a: Tenant,
) -> None:
    text = (
        "Name,Mobile,Email\n"
        "Ada,07400 100001,ada@example.com\n"
        "Bad,07400 100002,bad user@example.com\n"
        "Worse,07400 100003,worse@example..com\n"
    )

    job = _import(tenant_a, text)

    assert (job.created_count, job.invalid_count) == (1, 2)
    assert [line for line, _ in job.problems] == [3, 4]


def test_duplicates_in_the_file_and_in_the_book_merge_into_one_contact(
    tenant_a: Tenant,
) -> None:
    contact_create(
        user=tenant_a.user,
        number="07400 100001",
        details=ContactDetails(name="Ada", email="old@example.com"),
    )
    text = (
        "Name,Mobile,Email,Team\n"
        "Ada Lovelace,+447400100001,,Red\n"
        "Bob,07400 100002,,Blue\n"
        "Bobby,0044 7400 100002,bob@example.com,\n"
    )

    job = _import(tenant_a, text)

    assert (job.created_count, job.merged_count) == (1, 2)
    book = _book(tenant_a)
    assert len(book) == 2
    ada, bob = book["+447400100001"], book["+447400100002"]
    assert (ada.name, ada.email, ada.fields) == (
        "Ada Lovelace",
        "old@example.com",
        {"team": "Red"},
    )
    assert (bob.name, bob.email, bob.fields) == (
        "Bobby",
        "bob@example.com",
        {"team": "Blue"},
    )


def test_a_large_import_read_and_sealed_by_worker_processes_gives_the_same_book(
    tenant_a: Tenant, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows prepared in other processes merge, fail and decrypt alike."""
    settings.TMC_IMPORT_PROCESSES = 2
    monkeypatch.setattr(importing, "POOL_FROM_ROWS", 0)
    contact_create(
        user=tenant_a.user,
        number="07400 100001",
        details=ContactDetails(name="Ada", email="old@example.com"),
    )
    rows = "".join(f"Person {i},07400 2{i:05d},,\n" for i in range(40))
    text = (
        "Name,Mobile,Email,Team\n"
        "Ada Lovelace,+447400100001,,Red\n"
        "Bob,07400 100002,,Blue\n"
        "Landline,020 7946 0000,,\n"
        + rows
        + "Bobby,0044 7400 100002,bob@example.com,\n"
    )

    job = _import(tenant_a, text, batch_rows=10)

    assert (job.status, job.created_count, job.merged_count, job.invalid_count) == (
        "done",
        41,
        2,
        1,
    )
    assert job.problems == [[4, "Not a mobile number."]]
    book = _book(tenant_a)
    assert len(book) == 42
    assert book["+447400100001"].fields == {"team": "Red"}
    assert book["+447400100001"].email == "old@example.com"
    assert (book["+447400100002"].name, book["+447400100002"].email) == (
        "Bobby",
        "bob@example.com",
    )
    assert book["+447400200039"].name == "Person 39"


def test_imported_contacts_join_the_chosen_group(tenant_a: Tenant) -> None:
    group = group_create(user=tenant_a.user, name="Weekend staff")

    _import(tenant_a, GOOD, group=group)
    _import(tenant_a, GOOD, group=group)  # again: no double membership

    assert group.contacts.count() == 2


def test_first_and_last_name_columns_make_the_name(tenant_a: Tenant) -> None:
    text = "First name,Surname,Phone\nGrace,Hopper,07400 100001\n"

    _import(tenant_a, text)

    assert _book(tenant_a)["+447400100001"].name == "Grace Hopper"


def test_the_organisations_default_region_reads_national_numbers(
    tenant_a: Tenant,
) -> None:
    tenant_a.organisation.default_region = "FR"
    tenant_a.organisation.save()

    _import(tenant_a, "Mobile\n06 12 34 56 78\n")

    assert set(_book(tenant_a)) == {"+33612345678"}


@pytest.mark.parametrize(
    ("data", "encoding", "message"),
    [
        (b"", "utf-8", "empty"),
        (b"Name,Mobile\n", "utf-8", "no rows"),
        (b"Name,\nAda,07400100001\n", "utf-8", "needs a name"),
        (b"Mobile,mobile\n1,2\n", "utf-8", "Two columns"),
        ("Name,Mobile\nJos\xe9,07400100001\n".encode("cp1252"), "utf-8", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "utf-8", "binary"),
        (b"Mobile\n" + b"7" * 10_000_000 + b"\n", "utf-8", "Line 2"),
        (b'Mobile\n"07400 100001\n', "utf-8", "Line"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_reason_and_creates_nothing(
    tenant_a: Tenant, data: bytes, encoding: str, message: str
) -> None:
    with pytest.raises(ImportFileError, match=message):
        import_prepare(
            user=tenant_a.user, file_name="bad.csv", data=data, encoding=encoding
        )

    assert not ImportJob.objects.exists()
    assert not Contact.objects.exists()


def test_windows_1252_files_import_when_chosen(tenant_a: Tenant) -> None:
    job = _prepare(tenant_a, "Name,Mobile\nJosé,07400100001\n", encoding="cp1252")
    import_map(user=tenant_a.user, job=job, mapping=job.mapping, enqueue=False)
    import_run(job_id=job.pk)

    assert _book(tenant_a)["+447400100001"].name == "José"


def test_a_file_over_the_size_limit_is_refused(tenant_a: Tenant, settings: Any) -> None:
    settings.TMC_IMPORT_MAX_BYTES = 1_000

    with pytest.raises(ImportFileError, match="Split it"):
        _prepare(tenant_a, GOOD + "x," * 600)


def test_a_mapping_without_a_number_column_is_refused(tenant_a: Tenant) -> None:
    job = _prepare(tenant_a, GOOD)

    with pytest.raises(ValidationError) as refused:
        import_map(user=tenant_a.user, job=job, mapping={"name": "Name"}, enqueue=False)
    with pytest.raises(ValidationError):
        import_map(
            user=tenant_a.user,
            job=job,
            mapping={"number": "Mobile", "name": "Mobile"},
            enqueue=False,
        )

    assert "number" in refused.value.message_dict
    assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.MAPPING


def test_an_import_cut_short_resumes_after_its_last_batch(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash between batches loses nothing and doubles nothing."""
    rows = "".join(f"Person {i},07400 2{i:05d}\n" for i in range(25))
    job = _prepare(tenant_a, "Name,Mobile\n" + rows)
    import_map(user=tenant_a.user, job=job, mapping=job.mapping, enqueue=False)

    real = importing._batch_commit
    calls = {"n": 0}

    def crash_on_third(*args: Any) -> bool:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("worker killed")
        return real(*args)

    monkeypatch.setattr(importing, "_batch_commit", crash_on_third)
    with pytest.raises(RuntimeError):
        import_run(job_id=job.pk, batch_rows=10)
    halfway = ImportJob.objects.get(pk=job.pk)
    assert (halfway.status, halfway.next_row, halfway.created_count) == (
        "running",
        20,
        20,
    )
    assert Contact.objects.count() == 20

    monkeypatch.setattr(importing, "_batch_commit", real)
    done = import_run(job_id=job.pk, batch_rows=10)

    assert (done.status, done.next_row, done.created_count) == ("done", 25, 25)
    assert Contact.objects.count() == 25


def test_a_batch_another_worker_already_applied_is_rolled_back(
    tenant_a: Tenant,
) -> None:
    job = _prepare(tenant_a, GOOD)
    import_map(user=tenant_a.user, job=job, mapping=job.mapping, enqueue=False)
    stale = ImportJob.objects.get(pk=job.pk)
    ImportJob.objects.filter(pk=job.pk).update(next_row=1)

    [(size, prepared)] = importing._prepared(
        stale, iter([(2, ["Ada", "07400 100001", "", ""])]), batch_rows=10
    )

    applied = importing._batch_commit(stale, prepared, size)

    assert applied is False
    assert not Contact.objects.exists()


def test_a_finished_import_does_not_run_again(tenant_a: Tenant) -> None:
    job = _import(tenant_a, GOOD)

    again = import_run(job_id=job.pk)

    assert again.created_count == 2
    assert Event.objects.filter(action="contacts.imported").count() == 1
