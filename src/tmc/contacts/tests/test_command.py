"""``tmc contacts import``: the same import, from a terminal."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tmc.contacts.models import Contact, ImportJob
from tmc.contacts.services import group_create
from tmc.testing import Tenant


def _run(*args: str) -> str:
    out = StringIO()
    call_command("contacts", *args, stdout=out)
    return out.getvalue()


def test_a_file_imports_by_organisation_name_into_a_group(
    tenant_a: Tenant, tmp_path: Path
) -> None:
    group_create(user=tenant_a.user, name="Drivers")
    path = tmp_path / "people.csv"
    path.write_text("Who,Cell\nAda,07400 100001\nBad,hello\n", encoding="utf-8")

    out = _run(
        "import",
        str(path),
        "--org",
        tenant_a.organisation.name,
        "--map",
        "name=Who",
        "--group",
        "drivers",
    )

    assert "1 new contacts, 0 merged, 1 skipped" in out
    assert "line 3: Not a phone number." in out
    contact = Contact.objects.get()
    assert (contact.number, contact.name) == ("+447400100001", "Ada")
    assert [g.name for g in contact.groups.all()] == ["Drivers"]
    job = ImportJob.objects.get()
    assert job.created_by == tenant_a.controller


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "Nobody Ltd"], "No organisation"),
        (["--org", "Acme", "--user", "ghost"], "no active user"),
        (["--org", "Acme", "--group", "Ghosts"], "no group"),
        (["--org", "Acme", "--map", "number"], "FIELD=COLUMN"),
        (["--org", "Acme", "--map", "number=Nope"], "no column 'Nope'"),
    ],
)
def test_bad_arguments_stop_with_a_reason_and_import_nothing(
    tenant_a: Tenant, tmp_path: Path, args: list[str], message: str
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("Name,Mobile\nAda,07400 100001\n", encoding="utf-8")

    with pytest.raises(CommandError, match=message):
        _run("import", str(path), *args)

    assert not Contact.objects.exists()
    assert not ImportJob.objects.exists()


def test_an_unreadable_file_is_a_clear_error(tenant_a: Tenant, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot read"):
        _run("import", str(tmp_path / "missing.csv"), "--org", "Acme")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Name,Mobile\nJos\xe9,07400100001\n")
    with pytest.raises(CommandError, match="not UTF-8"):
        _run("import", str(bad), "--org", "Acme")
