"""Rotating an organisation's data key: every sealed value moves to the new
key, a run cut short resumes, and the old key goes once nothing uses it."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from django.apps import apps
from django.db import close_old_connections, connection

from tmc.accounts import encryption
from tmc.accounts.keyrotation import (
    KeyRotation,
    organisation_key_rotate,
    sealed_columns,
)
from tmc.accounts.models import DataKey, Organisation
from tmc.audit.models import Event
from tmc.contacts.importing import import_map, import_prepare, import_run
from tmc.contacts.models import Contact, ImportJob, OptOut
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    contact_update,
    opt_out_add_by_user,
)
from tmc.gateways.services import inbound_receive
from tmc.lib.crypto import DecryptionError
from tmc.messaging.models import InboundMessage, Message
from tmc.messaging.services import message_send
from tmc.testing import SENDER, Tenant, make_tenant


def _rotate(organisation: Organisation, **options: Any) -> KeyRotation:
    options.setdefault("settle_seconds", 0)
    return organisation_key_rotate(organisation=organisation, **options)


def _data_key(organisation: Organisation) -> DataKey:
    return DataKey.objects.get(
        organisation=organisation,
        purpose=DataKey.Purpose.DATA,
        retired_at__isnull=True,
        destroyed_at__isnull=True,
    )


def _contacts(tenant: Tenant, count: int) -> list[Contact]:
    return [
        contact_create(
            user=tenant.user,
            number=f"07400 2000{i:02d}",
            details=ContactDetails(name=f"Person {i}", fields={"shift": f"S{i}"}),
        )
        for i in range(count)
    ]


def _tokens(organisation: Organisation) -> dict[tuple[str, int, str], str]:
    """Every sealed value of the organisation, by (table, row, column)."""
    found = {}
    for column in sealed_columns():
        rows = column.model._default_manager.filter(organisation=organisation)
        for pk, token in rows.values_list("pk", column.field):
            if token:
                found[(column.model._meta.db_table, pk, column.field)] = token
    return found


def _address_book_and_messages(tenant: Tenant) -> dict[str, Any]:
    """One row in every sealed column, and what each should read back as."""
    contact = contact_create(
        user=tenant.user,
        number="07400 100001",
        details=ContactDetails(
            name="Ada Lovelace", email="ada@example.com", fields={"team": "Blue"}
        ),
    )
    opt_out = opt_out_add_by_user(user=tenant.user, number="07400 100002")
    job = import_prepare(
        user=tenant.user,
        file_name="people.csv",
        data=b"Name,Mobile\nGrace Hopper,07400 100003\n",
    )
    message = message_send(
        user=tenant.user, recipient="07400 100004", body="Shift swap on Friday?"
    )
    reply = inbound_receive(
        gateway="simulator", sender="+447400100004", recipient=SENDER, body="Yes"
    )
    assert reply.organisation_id == tenant.organisation.pk
    return {
        "contact": (contact.pk, "+447400100001", "Ada Lovelace", {"team": "Blue"}),
        "opt_out": (opt_out.pk, "+447400100002"),
        "job": job.pk,
        "message": (message.pk, "+447400100004", "Shift swap on Friday?"),
        "reply": (reply.pk, "+447400100004", "Yes"),
    }


def _reads_back(expected: dict[str, Any]) -> None:
    encryption.cache_clear()
    pk, number, name, fields = expected["contact"]
    contact = Contact.objects.get(pk=pk)
    assert (contact.number, contact.name, contact.fields) == (number, name, fields)
    pk, number = expected["opt_out"]
    assert OptOut.objects.get(pk=pk).number == number
    pk, recipient, body = expected["message"]
    message = Message.objects.get(pk=pk)
    assert (message.recipient, message.body) == (recipient, body)
    pk, sender, body = expected["reply"]
    reply = InboundMessage.objects.get(pk=pk)
    assert (reply.sender, reply.body) == (sender, body)


# --- the registry ------------------------------------------------------------------


def test_every_sealed_column_of_every_model_is_registered_for_rotation() -> None:
    """A new ``*_sealed`` column left out of the registry would keep its
    values under the old key, and lose them when that key is destroyed."""
    registered = {(c.model, c.field) for c in sealed_columns()}
    found = {
        (model, field.name)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if field.name.endswith("_sealed")
    }

    assert found - registered == set()
    assert len(found) >= 7


# --- rotating ------------------------------------------------------------------------


def test_rotation_moves_every_sealed_value_to_the_new_key_and_destroys_the_old(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    expected = _address_book_and_messages(tenant_a)
    _address_book_and_messages(tenant_b)
    old_key = _data_key(tenant_a.organisation)
    old_tokens = _tokens(tenant_a.organisation)
    other_tokens = _tokens(tenant_b.organisation)
    index_keys = set(
        DataKey.objects.filter(purpose="index").values_list("pk", "wrapped")
    )
    indexes = set(Contact.objects.values_list("pk", "number_index"))

    rotation = _rotate(tenant_a.organisation)

    new_key = _data_key(tenant_a.organisation)
    assert rotation.finished
    assert rotation.key_id == new_key.key_id != old_key.key_id
    assert rotation.retired == [old_key.key_id]
    assert rotation.values == len(old_tokens) == 8
    new_tokens = _tokens(tenant_a.organisation)
    assert new_tokens.keys() == old_tokens.keys()
    assert {encryption.key_id_of(t) for t in new_tokens.values()} == {new_key.key_id}
    _reads_back(expected)
    old_key.refresh_from_db()
    assert old_key.destroyed_at is not None
    assert old_key.wrapped == ""
    table, pk, column = next(iter(old_tokens))
    with pytest.raises(encryption.KeyUnavailable):
        encryption.decrypt(
            tenant_a.organisation.pk, old_tokens[(table, pk, column)], context="x"
        )
    # The other organisation and the blind indexes are untouched.
    assert _tokens(tenant_b.organisation) == other_tokens
    assert set(
        DataKey.objects.filter(purpose="index").values_list("pk", "wrapped")
    ) == (index_keys)
    assert set(Contact.objects.values_list("pk", "number_index")) == indexes


def test_the_rotation_is_in_the_organisations_activity_log(tenant_a: Tenant) -> None:
    _contacts(tenant_a, 3)

    _rotate(tenant_a.organisation)

    event = Event.objects.get(action="key.data_rotated")
    assert event.organisation == tenant_a.organisation
    assert event.actor_kind == "system"
    assert event.target_id == str(_data_key(tenant_a.organisation).pk)
    assert event.details["values"] == 6
    assert event.details["finished"] is True
    assert event.details["keys_retired"] == 1


def test_data_written_after_a_rotation_uses_the_new_key(tenant_a: Tenant) -> None:
    _contacts(tenant_a, 1)
    _rotate(tenant_a.organisation)
    encryption.cache_clear()

    contact = contact_create(
        user=tenant_a.user, number="07400 300001", details=ContactDetails(name="New")
    )

    new_key = _data_key(tenant_a.organisation).key_id
    assert encryption.key_id_of(contact.number_sealed) == new_key


def test_a_run_cut_short_is_resumed_by_the_next_and_the_old_key_then_goes(
    tenant_a: Tenant,
) -> None:
    contacts = _contacts(tenant_a, 5)
    old_key = _data_key(tenant_a.organisation)

    first = _rotate(tenant_a.organisation, batch_rows=2, max_batches=1)

    assert not first.finished
    assert first.rows == 2
    assert first.remaining == 3
    assert first.retired == []
    old_key.refresh_from_db()
    assert old_key.destroyed_at is None
    encryption.cache_clear()
    assert [Contact.objects.get(pk=c.pk).name for c in contacts] == [
        f"Person {i}" for i in range(5)
    ]

    def crash(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _rotate(tenant_a.organisation, batch_rows=2, progress=crash)

    second = _rotate(tenant_a.organisation, batch_rows=2)

    assert second.resumed
    assert second.key_id == first.key_id
    assert second.finished
    assert first.rows + 2 + second.rows == 5
    assert DataKey.objects.filter(organisation=tenant_a.organisation).count() == 3
    assert DataKey.objects.get(pk=old_key.pk).destroyed_at is not None
    tokens = _tokens(tenant_a.organisation).values()
    assert {encryption.key_id_of(t) for t in tokens} == {first.key_id}
    encryption.cache_clear()
    assert [Contact.objects.get(pk=c.pk).name for c in contacts] == [
        f"Person {i}" for i in range(5)
    ]


def test_a_second_rotation_after_a_finished_one_makes_another_key(
    tenant_a: Tenant,
) -> None:
    contact = _contacts(tenant_a, 1)[0]

    first = _rotate(tenant_a.organisation)
    second = _rotate(tenant_a.organisation)

    assert not second.resumed
    assert second.key_id != first.key_id
    assert second.retired == [first.key_id]
    encryption.cache_clear()
    assert Contact.objects.get(pk=contact.pk).name == "Person 0"


def test_a_value_copied_between_rows_still_does_not_open_after_rotation(
    tenant_a: Tenant,
) -> None:
    first, second = _contacts(tenant_a, 2)
    _rotate(tenant_a.organisation)

    moved = Contact.objects.get(pk=first.pk).details_sealed
    Contact.objects.filter(pk=second.pk).update(details_sealed=moved)

    encryption.cache_clear()
    with pytest.raises(DecryptionError):
        _ = Contact.objects.get(pk=second.pk).name


def test_a_value_copied_before_rotation_is_not_made_valid_by_it(
    tenant_a: Tenant,
) -> None:
    """The rotation opens each value in its own row's context, so a moved
    value is not re-sealed where it was moved to; the old key is kept for
    it rather than destroyed."""
    first, second = _contacts(tenant_a, 2)
    Contact.objects.filter(pk=second.pk).update(details_sealed=first.details_sealed)
    old_key = _data_key(tenant_a.organisation)

    rotation = _rotate(tenant_a.organisation)

    assert rotation.unreadable == 1
    assert rotation.remaining == 1
    assert not rotation.finished
    old_key.refresh_from_db()
    assert old_key.destroyed_at is None
    encryption.cache_clear()
    with pytest.raises(DecryptionError):
        _ = Contact.objects.get(pk=second.pk).name
    assert Contact.objects.get(pk=second.pk).number == "+447400200001"


def test_a_value_written_under_the_old_key_during_rotation_moves_before_it_goes(
    tenant_a: Tenant,
) -> None:
    """Another process may still have the old key cached as current: what
    it writes behind the first pass is re-encrypted by the second."""
    contacts = _contacts(tenant_a, 4)
    old_key = _data_key(tenant_a.organisation)
    stale = encryption._current_key(tenant_a.organisation.pk, DataKey.Purpose.DATA)
    written: list[str] = []

    def stale_writer(done: int, total: int) -> None:
        if written:
            return
        encryption._current[(tenant_a.organisation.pk, DataKey.Purpose.DATA)] = (
            encryption._Key(stale.key_id, stale.owner, stale.secret, time.monotonic())
        )
        edited = contact_update(
            user=tenant_a.user,
            contact=Contact.objects.get(pk=contacts[0].pk),
            details=ContactDetails(name="Edited meanwhile"),
        )
        written.append(edited.details_sealed)

    rotation = _rotate(tenant_a.organisation, batch_rows=2, progress=stale_writer)

    assert encryption.key_id_of(written[0]) == old_key.key_id
    assert rotation.finished
    encryption.cache_clear()
    edited = Contact.objects.get(pk=contacts[0].pk)
    assert encryption.key_id_of(edited.details_sealed) == rotation.key_id
    assert edited.name == "Edited meanwhile"


def test_an_edit_made_while_its_batch_is_re_encrypted_is_kept(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rotation reads a batch, then writes it back re-encrypted; an edit
    that lands in between must win over the rotation's stale copy."""
    contacts = _contacts(tenant_a, 3)
    reencrypt = encryption.reencrypt
    edits: list[int] = []

    def edited_meanwhile(*args: Any, **kwargs: Any) -> str:
        if not edits:
            edits.append(contacts[1].pk)
            contact_update(
                user=tenant_a.user,
                contact=Contact.objects.get(pk=contacts[1].pk),
                details=ContactDetails(name="Edited meanwhile"),
            )
        return reencrypt(*args, **kwargs)

    monkeypatch.setattr(encryption, "reencrypt", edited_meanwhile)

    rotation = _rotate(tenant_a.organisation)

    assert rotation.changed == 1
    assert rotation.rows == 2
    assert rotation.finished
    encryption.cache_clear()
    assert [Contact.objects.get(pk=c.pk).name for c in contacts] == [
        "Person 0",
        "Edited meanwhile",
        "Person 2",
    ]


def test_an_import_prepared_before_a_rotation_runs_after_it(tenant_a: Tenant) -> None:
    job = import_prepare(
        user=tenant_a.user,
        file_name="people.csv",
        data=b"Name,Mobile\nGrace Hopper,07400 100003\n",
    )
    import_map(user=tenant_a.user, job=job, mapping=job.mapping, enqueue=False)

    _rotate(tenant_a.organisation)
    encryption.cache_clear()
    import_run(job_id=job.pk)

    assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.DONE
    assert Contact.objects.get().name == "Grace Hopper"


def test_an_erased_organisation_is_not_rotated(tenant_a: Tenant) -> None:
    _contacts(tenant_a, 1)
    encryption.organisation_keys_destroy(tenant_a.organisation)
    keys_before = set(DataKey.objects.values_list("pk", "wrapped", "destroyed_at"))

    with pytest.raises(encryption.KeyUnavailable):
        _rotate(tenant_a.organisation)

    assert set(DataKey.objects.values_list("pk", "wrapped", "destroyed_at")) == (
        keys_before
    )


def test_erasing_in_the_middle_of_a_rotation_still_erases(tenant_a: Tenant) -> None:
    contact = _contacts(tenant_a, 3)[0]
    _rotate(tenant_a.organisation, batch_rows=1, max_batches=1)

    encryption.organisation_keys_destroy(tenant_a.organisation)

    assert encryption.organisation_erased(tenant_a.organisation.pk)
    assert Contact.objects.get(pk=contact.pk).number == "(erased)"
    with pytest.raises(encryption.KeyUnavailable):
        _contacts(tenant_a, 4)


# --- while the application serves ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rotation_while_contacts_are_read_and_edited_loses_no_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A thread keeps reading and editing contacts through the services while
    the rotation runs: it sees no error, and every edit survives, including
    edits that land between a batch being read and written back."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    # A short key cache, so the thread goes on sealing with the old key for
    # part of the run, as another process would.
    monkeypatch.setattr(encryption, "CACHE_SECONDS", 0.5)
    tenant = make_tenant("Umbrella")
    contacts = _contacts(tenant, 60)
    old_key = _data_key(tenant.organisation)
    expected = {c.pk: f"Person {i}" for i, c in enumerate(contacts)}
    sealed_with: list[str] = []
    errors: list[BaseException] = []
    rotating = threading.Event()
    done = threading.Event()

    def serve() -> None:
        pick = random.Random(4)
        try:
            rotating.wait()
            turn = 0
            while not done.is_set():
                contact = Contact.objects.get(pk=pick.choice(contacts).pk)
                assert contact.name == expected[contact.pk]
                name = f"Edit {turn}"
                edited = contact_update(
                    user=tenant.user, contact=contact, details=ContactDetails(name=name)
                )
                expected[contact.pk] = name
                sealed_with.append(encryption.key_id_of(edited.details_sealed))
                turn += 1
        except BaseException as exc:  # reported to the test below
            errors.append(exc)
        finally:
            close_old_connections()

    # A slower re-encryption widens the window between a batch being read
    # and written back, so that edits land in it.
    reencrypt = encryption.reencrypt

    def slowly(*args: Any, **kwargs: Any) -> str:
        rotating.set()
        time.sleep(0.01)
        return reencrypt(*args, **kwargs)

    monkeypatch.setattr(encryption, "reencrypt", slowly)
    thread = threading.Thread(target=serve)
    thread.start()
    # The old key is freshly cached as current when the rotation starts.
    encryption.cache_clear()
    encryption.encrypt(tenant.organisation.pk, "warm", context="cache")
    try:
        rotation = organisation_key_rotate(
            organisation=tenant.organisation, batch_rows=5, settle_seconds=1.0
        )
    finally:
        rotating.set()
        done.set()
        thread.join()

    assert errors == []
    assert rotation.changed > 0
    assert old_key.key_id in sealed_with
    assert rotation.key_id in sealed_with
    assert rotation.finished
    old_key.refresh_from_db()
    assert old_key.destroyed_at is not None
    encryption.cache_clear()
    for contact in Contact.objects.filter(organisation=tenant.organisation):
        assert encryption.key_id_of(contact.details_sealed) == rotation.key_id
        assert encryption.key_id_of(contact.number_sealed) == rotation.key_id
        assert contact.name == expected[contact.pk]
