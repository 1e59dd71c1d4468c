"""``tmc keys rotate``: the master key, or one organisation's data key."""

from __future__ import annotations

import base64
from io import StringIO
from typing import Any

import pyotp
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tmc.accounts import encryption
from tmc.accounts.models import DataKey
from tmc.audit.models import Event
from tmc.cli import main
from tmc.contacts.models import Contact
from tmc.contacts.services import ContactDetails, contact_create
from tmc.identity.totp import _secret, totp_check, totp_enrolment_start
from tmc.lib import keys
from tmc.lib.crypto import fingerprint
from tmc.messaging.models import Message
from tmc.messaging.services import message_send
from tmc.testing import Tenant


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rotation waits twice the key cache's lifetime before destroying
    an old key; a cache of no length makes that no wait."""
    monkeypatch.setattr(encryption, "CACHE_SECONDS", 0)


def _run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("keys", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _fill(tenant: Tenant, count: int = 3) -> list[Contact]:
    message_send(user=tenant.user, recipient="07400 100009", body="Rota attached")
    return [
        contact_create(
            user=tenant.user,
            number=f"07400 1000{i:02d}",
            details=ContactDetails(name=f"Person {i}"),
        )
        for i in range(count)
    ]


def _everything(*tenants: Tenant) -> list[tuple[Any, ...]]:
    """Every sealed value of these organisations, opened."""
    encryption.cache_clear()
    organisations = [t.organisation for t in tenants]
    contacts = Contact.objects.filter(organisation__in=organisations).order_by("pk")
    messages = Message.objects.filter(organisation__in=organisations).order_by("pk")
    return [(c.number, c.name) for c in contacts] + [
        (m.recipient, m.body) for m in messages
    ]


def _state() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]], int]:
    return (
        set(DataKey.objects.values_list("key_id", "wrapped", "retired_at")),
        set(Contact.objects.values_list("number_sealed", "details_sealed")),
        Event.objects.count(),
    )


def test_an_organisation_rotation_by_name_re_encrypts_and_reports(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    _fill(tenant_a)
    _fill(tenant_b)
    before = _everything(tenant_a, tenant_b)
    old_key = encryption.key_id_of(
        Contact.objects.filter(organisation=tenant_a.organisation)[0].number_sealed
    )

    out, _ = _run("rotate", "--org", "Acme")

    new_key = DataKey.objects.get(
        organisation=tenant_a.organisation, purpose="data", retired_at__isnull=True
    ).key_id
    assert f"Started the rotation of Acme's data key to {new_key}" in out
    assert "8 values in 4 rows re-encrypted" in out
    assert f"Done. Old keys destroyed: {old_key}." in out
    assert _everything(tenant_a, tenant_b) == before
    tokens = Contact.objects.filter(organisation=tenant_a.organisation).values_list(
        "number_sealed", flat=True
    )
    assert {encryption.key_id_of(t) for t in tokens} == {new_key}


def test_a_rotation_stopped_early_says_how_to_continue_and_continues(
    tenant_a: Tenant,
) -> None:
    _fill(tenant_a)
    organisation_id = str(tenant_a.organisation.pk)

    out, _ = _run(
        "rotate", "--org", organisation_id, "--batch-size", "1", "--max-batches", "2"
    )
    assert "4 values in 2 rows re-encrypted" in out
    assert "2 rows still use the old key: run the same command again" in out

    out, _ = _run("rotate", "--org", organisation_id)
    assert "Continued the rotation" in out
    assert "Done. Old keys destroyed" in out
    assert [
        a.details["finished"]
        for a in Event.objects.filter(action="key.data_rotated").order_by("pk")
    ] == [False, True]


def test_the_wait_before_destroying_the_old_key_is_announced(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(tenant_a, 1)
    monkeypatch.setattr(encryption, "CACHE_SECONDS", 0.5)

    out, err = _run("rotate", "--org", "Acme")

    assert "Waiting 1 s until no process can still be sealing with the old key" in err
    assert "Done." in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --master --org is required"),
        (["--master", "--org", "Acme"], "not allowed with argument --master"),
        (["--org", "Nobody Ltd"], "No organisation 'Nobody Ltd'"),
        (["--org", "999"], "No organisation '999'"),
        (["--org", "Acme", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--org", "Acme", "--max-batches", "0"], "--max-batches must be at least 1"),
        (["--master", "--max-batches", "1"], "go with --org, not --master"),
    ],
)
def test_bad_arguments_stop_with_a_reason_and_change_nothing(
    tenant_a: Tenant, args: list[str], message: str
) -> None:
    _fill(tenant_a)
    master = keys.read_master_key(settings.TMC_HOME)
    before = _state()

    with pytest.raises(CommandError, match=message):
        _run("rotate", *args)

    assert _state() == before
    assert keys.read_master_key(settings.TMC_HOME) == master


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["keys", "rotate"], 2, "one of the arguments --master --org is required"),
        (["keys", "rotate", "--org", "Nobody Ltd"], 1, "No organisation 'Nobody Ltd'"),
    ],
)
def test_bad_arguments_exit_non_zero_from_the_tmc_command(
    db: None,
    args: list[str],
    code: int,
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)

    assert exited.value.code == code
    assert message in capsys.readouterr().err


def test_an_erased_organisation_is_refused(tenant_a: Tenant) -> None:
    _fill(tenant_a)
    encryption.organisation_keys_destroy(tenant_a.organisation)
    before = _state()

    with pytest.raises(CommandError, match="keys have been destroyed"):
        _run("rotate", "--org", "Acme")

    assert _state() == before


def test_values_that_do_not_open_keep_the_old_key_and_fail_the_command(
    tenant_a: Tenant,
) -> None:
    first, second = _fill(tenant_a, 2)
    Contact.objects.filter(pk=second.pk).update(details_sealed=first.details_sealed)

    with pytest.raises(CommandError, match="1 values did not open"):
        _run("rotate", "--org", "Acme")

    assert (
        DataKey.objects.filter(
            organisation=tenant_a.organisation,
            purpose="data",
            destroyed_at__isnull=True,
        ).count()
        == 2
    )


def test_master_rotation_prints_the_fingerprint_and_leaves_every_value_readable(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    _fill(tenant_a)
    _fill(tenant_b)
    admin = tenant_a.administrator
    totp_enrolment_start(admin)
    totp_secret = _secret(admin)
    before = _everything(tenant_a, tenant_b)
    old_master = keys.read_master_key(settings.TMC_HOME)

    out, err = _run("rotate", "--master")

    master = keys.read_master_key(settings.TMC_HOME)
    assert master != old_master
    count = DataKey.objects.count()
    assert (
        out.strip() == f"New master key {fingerprint(master)}: {count} keys re-wrapped."
    )
    for key in (master, old_master):
        for shown in (base64.b64encode(key).decode(), key.hex()):
            assert shown not in out + err
    assert _everything(tenant_a, tenant_b) == before
    admin.refresh_from_db()
    assert totp_check(admin, pyotp.TOTP(totp_secret).now())
    event = Event.objects.get(action="key.master_rotated")
    assert event.organisation is None
    assert event.actor_kind == "system"
    assert event.details["keys_rewrapped"] == count
