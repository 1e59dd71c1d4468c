"""Encryption at rest: envelope keys per organisation, bound ciphertexts."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tmc.accounts import encryption
from tmc.accounts.models import DataKey
from tmc.contacts.importing import import_prepare
from tmc.contacts.services import ContactDetails, contact_create, opt_out_add_by_user
from tmc.lib import keys
from tmc.lib.crypto import DecryptionError, derive_key, seal, unseal
from tmc.messaging.models import ERASED, Message
from tmc.messaging.services import message_send
from tmc.testing import Tenant, make_tenant

KEY = derive_key(os.urandom(32), "test")


@hypothesis_settings(max_examples=200)
@given(st.text(max_size=400), st.text(min_size=1, max_size=40))
def test_any_text_round_trips(plaintext: str, owner: str) -> None:
    assert unseal(KEY, seal(KEY, plaintext, associated=owner), associated=owner) == (
        plaintext
    )


@hypothesis_settings(max_examples=200)
@given(st.text(min_size=1, max_size=200), st.data())
def test_any_flipped_bit_is_refused(plaintext: str, data: Any) -> None:
    token = seal(KEY, plaintext, associated="row:1")
    version, _, body = token.partition(":")
    import base64

    raw = bytearray(base64.urlsafe_b64decode(body))
    position = data.draw(st.integers(0, len(raw) * 8 - 1))
    raw[position // 8] ^= 1 << (position % 8)
    tampered = f"{version}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"

    with pytest.raises(DecryptionError):
        unseal(KEY, tampered, associated="row:1")


@hypothesis_settings(max_examples=100)
@given(st.text(max_size=100), st.integers(1, 10**6), st.integers(1, 10**6))
def test_any_moved_ciphertext_is_refused(plaintext: str, row: int, other: int) -> None:
    if row == other:
        return
    token = seal(KEY, plaintext, associated=f"messaging_message.body|{row}")

    with pytest.raises(DecryptionError):
        unseal(KEY, token, associated=f"messaging_message.body|{other}")


def _send(tenant: Tenant, number: str, body: str) -> Message:
    return message_send(user=tenant.user, recipient=number, body=body)


def test_messages_read_back_and_keys_are_wrapped(tenant_a: Tenant) -> None:
    message = _send(tenant_a, "07400 123456", "Shift swap on Friday?")

    fresh = Message.objects.get(pk=message.pk)
    assert fresh.recipient == "+447400123456"
    assert fresh.body == "Shift swap on Friday?"
    assert fresh.recipient_sealed.startswith(
        DataKey.objects.get(organisation=tenant_a.organisation, purpose="data").key_id
    )
    master = keys.read_master_key(settings.TMC_HOME)
    for row in DataKey.objects.all():
        assert master.hex() not in row.wrapped


def test_a_ciphertext_copied_to_another_row_does_not_open(tenant_a: Tenant) -> None:
    first = _send(tenant_a, "07400 123456", "First body")
    second = _send(tenant_a, "07400 123457", "Second body")
    Message.objects.filter(pk=second.pk).update(body_sealed=first.body_sealed)

    with pytest.raises(DecryptionError):
        _ = Message.objects.get(pk=second.pk).body


def test_a_ciphertext_copied_to_another_organisation_does_not_open(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    mine = _send(tenant_a, "07400 123456", "Acme secret")
    context = encryption.field_context(Message.TABLE, "body", mine.uid)

    assert encryption.decrypt(
        tenant_a.organisation.pk, mine.body_sealed, context=context
    )
    with pytest.raises(DecryptionError):
        encryption.decrypt(tenant_b.organisation.pk, mine.body_sealed, context=context)


def test_blind_indexes_differ_between_organisations(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    a = _send(tenant_a, "07400 123456", "x")
    a_again = _send(tenant_a, "+447400123456", "y")
    b = _send(tenant_b, "07400 123456", "z")

    assert a.recipient_index == a_again.recipient_index
    assert a.recipient_index != b.recipient_index
    assert "447400123456" not in a.recipient_index


def test_destroying_the_keys_erases_the_data_at_once(tenant_a: Tenant) -> None:
    message = _send(tenant_a, "07400 123456", "Personal details")

    encryption.organisation_keys_destroy(tenant_a.organisation)

    fresh = Message.objects.get(pk=message.pk)
    assert fresh.body == ERASED
    assert fresh.recipient == ERASED
    page = tenant_a.client_for(tenant_a.user).get(f"/messages/{message.pk}/")
    assert b"Personal details" not in page.content
    assert b"(erased)" in page.content


def test_rotating_the_master_key_rewraps_keys_and_keeps_data(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    message = _send(tenant_a, "07400 123456", "Still readable")
    old = keys.read_master_key(settings.TMC_HOME)

    new_id, count = encryption.master_key_rotate()

    assert count == DataKey.objects.count() >= 3
    assert set(DataKey.objects.values_list("master_key_id", flat=True)) == {new_id}
    assert keys.read_master_key(settings.TMC_HOME) != old
    assert len(keys.master_keys(settings.TMC_HOME)) == 1
    encryption.cache_clear()
    assert Message.objects.get(pk=message.pk).body == "Still readable"


def test_the_database_holds_no_plaintext(tenant_a: Tenant) -> None:
    """A raw scan of every column of every table finds no number or body."""
    secrets_written = {
        "body": "Canary body 9f3e about the Saturday rota",
        "national": "7400 987654",
        "e164": "+447400987654",
        "digits": "447400987654",
        "contact": "7400 987655",
        "name": "Canary Contactperson",
        "email": "canary.contact@example.com",
        "field": "Canary shift note",
        "opted out": "7400 987656",
        "imported": "7400 987657",
        "imported name": "Canary Importee",
    }
    _send(tenant_a, "07400 987654", secrets_written["body"])
    contact_create(
        user=tenant_a.user,
        number="07400 987655",
        details=ContactDetails(
            name=secrets_written["name"],
            email=secrets_written["email"],
            fields={"note": secrets_written["field"]},
        ),
    )
    opt_out_add_by_user(user=tenant_a.user, number="07400 987656")
    # An import waiting for its columns keeps the whole file, sealed.
    import_prepare(
        user=tenant_a.user,
        file_name="people.csv",
        data=b"Name,Mobile\nCanary Importee,07400 987657\n",
    )

    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            # The simulator stands in for a third party's systems, which keep
            # their own copy; it is not part of TMC's storage.
            if table.startswith("gateway_simulator_"):
                continue
            columns = [
                column.name
                for column in connection.introspection.get_table_description(
                    cursor, table
                )
            ]
            quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
            cursor.execute(
                f"SELECT {quoted} FROM {connection.ops.quote_name(table)}"  # noqa: S608
            )
            for row in cursor.fetchall():
                text = " ".join(str(value) for value in row)
                for name, secret in secrets_written.items():
                    if secret in text or secret.replace(" ", "") in text:
                        found.append((table, name))

    assert found == []


@pytest.mark.django_db(transaction=True)
def test_a_transaction_reads_each_committed_key_once() -> None:
    """A batch opening many values in one transaction looks its key up once."""
    owner = make_tenant("Initech").organisation.pk
    tokens = [
        encryption.encrypt(owner, f"text {n}", context=f"t|{n}") for n in range(5)
    ]
    encryption.cache_clear()

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        opened = [
            encryption.decrypt(owner, token, context=f"t|{n}")
            for n, token in enumerate(tokens)
        ]

    assert opened == [f"text {n}" for n in range(5)]
    key_reads = [q for q in queries.captured_queries if "accounts_datakey" in q["sql"]]
    assert len(key_reads) == 1


def test_a_key_made_in_a_transaction_that_rolls_back_is_not_kept(
    tenant_a: Tenant,
) -> None:
    owner = tenant_a.organisation.pk
    DataKey.objects.filter(organisation_id=owner).delete()
    encryption.cache_clear()

    lost = ""

    def seal_then_fail() -> None:
        nonlocal lost
        with transaction.atomic():
            lost = encryption.encrypt(owner, "gone", context="t|1")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        seal_then_fail()

    assert not DataKey.objects.filter(key_id=encryption.key_id_of(lost)).exists()
    with pytest.raises(encryption.KeyUnavailable):
        encryption.decrypt(owner, lost, context="t|1")
    kept = encryption.encrypt(owner, "kept", context="t|2")
    assert encryption.key_id_of(kept) != encryption.key_id_of(lost)
    assert encryption.decrypt(owner, kept, context="t|2") == "kept"
