"""The activity log's tamper evidence: hash chains, anchors, retention.

Docstrings name the clause each test proves: "C11" is clause 11 of the
published policy's "Clients and Users Security" ("logs record all user
activities"); "I7" marks what issue 7 adds on top (tamper evidence).
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from tmc.audit.models import PLATFORM_CHAIN, ActorKind, ChainHead, Event
from tmc.audit.services import (
    anchors_read,
    anchors_write,
    chains_verify,
    event_record,
    events_prune,
)
from tmc.identity.services import UserChanges, user_update
from tmc.ops.tests.test_cli import tmc
from tmc.testing import Tenant, make_tenant


def _chain(tenant: Tenant) -> str:
    return f"org:{tenant.organisation.pk}"


def _raw_update(sql: str, *params: Any) -> None:
    """Change the table behind the application's back, as an intruder would."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_each_organisation_has_its_own_unbroken_chain(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """I7: events link within their organisation's chain, from sequence 1."""
    for tenant in (tenant_a, tenant_b):
        events = list(Event.objects.filter(chain=_chain(tenant)).order_by("sequence"))
        assert [e.sequence for e in events] == list(range(1, len(events) + 1))
        assert all(e.organisation_id == tenant.organisation.pk for e in events)
        for before, after in itertools.pairwise(events):
            assert after.previous_hash == before.hash
        head = ChainHead.objects.get(chain=_chain(tenant))
        assert (head.last_sequence, head.last_hash) == (
            events[-1].sequence,
            events[-1].hash,
        )

    assert chains_verify().ok


def test_platform_events_form_their_own_chain(db: None) -> None:
    """I7: events with no organisation chain together, apart from clients'."""
    first = event_record(action="platform.started")
    second = event_record(action="platform.checked", actor_label="system:cron")

    assert (first.chain, second.chain) == (PLATFORM_CHAIN, PLATFORM_CHAIN)
    assert second.previous_hash == first.hash
    assert second.actor_kind == ActorKind.SYSTEM
    assert chains_verify().ok


def test_an_action_that_rolls_back_leaves_no_event(tenant_a: Tenant) -> None:
    """C11: the event is written in the change's own transaction."""
    before = Event.objects.count()
    head = ChainHead.objects.get(chain=_chain(tenant_a))
    changes = UserChanges(
        role="user",
        full_name="Renamed",
        email=tenant_a.user.email,
        permissions=frozenset(),
        daily_message_limit=None,
        monthly_message_limit=None,
    )

    def action_that_fails_after_the_change() -> None:
        with transaction.atomic():
            user_update(
                actor=tenant_a.controller, target=tenant_a.user, changes=changes
            )
            assert Event.objects.filter(action="user.permissions_changed").exists()
            raise RuntimeError("the rest of the action failed")

    with pytest.raises(RuntimeError):
        action_that_fails_after_the_change()

    assert Event.objects.count() == before
    assert ChainHead.objects.get(pk=head.pk).last_sequence == head.last_sequence
    assert chains_verify().ok


def test_an_edited_event_fails_verify_at_that_link(tenant_a: Tenant) -> None:
    """I7: a row changed directly in the database is reported, by sequence."""
    event = Event.objects.filter(chain=_chain(tenant_a)).order_by("sequence")[2]

    _raw_update(
        "UPDATE audit_event SET actor_label = %s WHERE id = %s", "nobody", event.pk
    )

    report = chains_verify()
    assert not report.ok
    assert report.problems == [
        f"{_chain(tenant_a)}: event {event.sequence} (id {event.pk}) was changed "
        "after it was written (its hash does not match its contents)"
    ]


def test_an_edited_detail_fails_verify(tenant_a: Tenant) -> None:
    """I7: JSON details are covered by the hash as well."""
    event = event_record(
        action="user.updated", actor=tenant_a.controller, details={"changed": {}}
    )

    _raw_update(
        "UPDATE audit_event SET details = %s WHERE id = %s",
        '{"changed": {"role": "controller"}}',
        event.pk,
    )

    assert not chains_verify().ok


def test_a_deleted_event_fails_verify(tenant_a: Tenant) -> None:
    """I7: removing an event from the middle of a chain leaves a gap."""
    event = Event.objects.filter(chain=_chain(tenant_a)).order_by("sequence")[1]

    _raw_update("DELETE FROM audit_event WHERE id = %s", event.pk)

    (problem,) = chains_verify().problems
    assert problem.startswith(f"{_chain(tenant_a)}: event {event.sequence} is missing")


def test_a_rewritten_chain_verifies_alone_but_not_against_the_anchors(
    tenant_a: Tenant, tmp_path: Path
) -> None:
    """I7: recomputing every hash after an edit is caught by the anchor log."""
    anchors = tmp_path / "anchors.log"
    anchors_write(path=anchors)
    target = Event.objects.filter(chain=_chain(tenant_a)).order_by("sequence")[0]

    # The intruder edits the first event and re-chains everything after it.
    Event.objects.filter(pk=target.pk).update(actor_label="nobody")
    _rechain(_chain(tenant_a))

    assert chains_verify().ok
    report = chains_verify(anchors_path=anchors)
    assert not report.ok
    assert "differs from the anchor log" in report.problems[0]


def _rechain(chain: str) -> None:
    from tmc.audit.chain import HASHED_FIELDS, event_hash
    from tmc.audit.models import GENESIS_HASH

    previous = GENESIS_HASH
    for event in Event.objects.filter(chain=chain).order_by("sequence"):
        event.previous_hash = previous
        event.hash = event_hash({n: getattr(event, n) for n in HASHED_FIELDS})
        event.save()
        previous = event.hash
    ChainHead.objects.filter(chain=chain).update(last_hash=previous)


def test_a_truncated_chain_fails_against_the_anchors(
    tenant_a: Tenant, tmp_path: Path
) -> None:
    """I7: deleting the newest events and moving the head back is caught too."""
    anchors = tmp_path / "anchors.log"
    anchors_write(path=anchors)
    last = Event.objects.filter(chain=_chain(tenant_a)).order_by("-sequence")[0]
    Event.objects.filter(pk=last.pk).delete()
    ChainHead.objects.filter(chain=_chain(tenant_a)).update(
        last_sequence=last.sequence - 1, last_hash=last.previous_hash
    )

    assert chains_verify().ok
    report = chains_verify(anchors_path=anchors)
    assert [p for p in report.problems if "events were removed" in p]


def test_a_deleted_chain_fails_against_the_anchors(
    tenant_a: Tenant, tmp_path: Path
) -> None:
    anchors = tmp_path / "anchors.log"
    anchors_write(path=anchors)

    Event.objects.filter(chain=_chain(tenant_a)).delete()
    ChainHead.objects.filter(chain=_chain(tenant_a)).delete()

    report = chains_verify(anchors_path=anchors)
    assert report.problems == [
        f"{_chain(tenant_a)}: the anchor log records this chain, but the database "
        "has none: it was removed"
    ]


def test_anchors_are_written_only_for_chains_that_grew(
    tenant_a: Tenant, tmp_path: Path
) -> None:
    anchors = tmp_path / "anchors.log"
    chains = ChainHead.objects.count()

    assert anchors_write(path=anchors) == chains
    assert anchors_write(path=anchors) == 0
    event_record(action="user.updated", actor=tenant_a.user)
    assert anchors_write(path=anchors) == 1

    written = anchors_read(anchors)
    assert len(written) == chains + 1
    assert written[-1].hash == ChainHead.objects.get(chain=_chain(tenant_a)).last_hash
    assert anchors.stat().st_mode & 0o777 == 0o600


# --- retention --------------------------------------------------------------------


def _record_at(
    moment: Any, monkeypatch: pytest.MonkeyPatch, tenant: Tenant, count: int
) -> None:
    with monkeypatch.context() as clock:
        clock.setattr(timezone, "now", lambda: moment)
        for _ in range(count):
            event_record(action="login.succeeded", actor=tenant.user)


def test_pruning_removes_old_leading_events_and_verify_stays_green(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """I7: retention removes whole leading segments and keeps an anchor."""
    anchors = tmp_path / "anchors.log"
    Event.objects.all().delete()
    ChainHead.objects.all().delete()
    now = timezone.now()
    _record_at(now - timedelta(days=800), monkeypatch, tenant_a, 3)
    _record_at(now - timedelta(days=10), monkeypatch, tenant_a, 2)
    anchors_write(path=anchors)

    report = events_prune(before=now - timedelta(days=730), anchors_path=anchors)

    assert (report.chains, report.events) == (1, 3)
    remaining = list(Event.objects.order_by("sequence"))
    assert [e.sequence for e in remaining] == [4, 5]
    head = ChainHead.objects.get()
    assert head.base_sequence == 3
    assert head.base_hash == remaining[0].previous_hash
    assert chains_verify(anchors_path=anchors).ok
    # And the chain carries on from where it was.
    event_record(action="logout.logout", actor=tenant_a.user)
    assert chains_verify(anchors_path=anchors).ok


def test_pruning_nothing_old_changes_nothing(tenant_a: Tenant, tmp_path: Path) -> None:
    before = Event.objects.count()

    report = events_prune(
        before=timezone.now() - timedelta(days=730), anchors_path=tmp_path / "a.log"
    )

    assert (report.chains, report.events) == (0, 0)
    assert Event.objects.count() == before
    assert not (tmp_path / "a.log").exists()


def test_deleting_the_start_of_a_chain_is_not_a_prune(
    tenant_a: Tenant, tmp_path: Path
) -> None:
    """I7: faking a prune without its anchor fails verify."""
    anchors = tmp_path / "anchors.log"
    anchors_write(path=anchors)
    first, second = Event.objects.filter(chain=_chain(tenant_a)).order_by("sequence")[
        :2
    ]
    Event.objects.filter(pk=first.pk).delete()
    ChainHead.objects.filter(chain=_chain(tenant_a)).update(
        base_sequence=1, base_hash=second.previous_hash
    )

    report = chains_verify(anchors_path=anchors)
    assert report.problems == [
        f"{_chain(tenant_a)}: the chain starts after event 1, but no anchor "
        "records that prune"
    ]


# --- the command ------------------------------------------------------------------


def test_the_audit_command_verifies_and_fails_on_a_broken_link(
    tenant_a: Tenant, settings: Any, tmp_path: Path
) -> None:
    settings.TMC_AUDIT_ANCHOR_FILE = tmp_path / "anchors.log"
    call_command("audit", "anchor")
    call_command("audit", "verify")
    event = Event.objects.filter(chain=_chain(tenant_a)).first()
    assert event is not None

    _raw_update("UPDATE audit_event SET action = %s WHERE id = %s", "x", event.pk)

    with pytest.raises(CommandError, match="fails verification"):
        call_command("audit", "verify")


def test_tmc_audit_verify_exits_non_zero_after_an_update(tmp_path: Path) -> None:
    """I7: the operator's command, on a real installation, as a process."""
    home = tmp_path / "home"
    assert tmc("init", home=home).returncode == 0
    created = tmc(
        "create-account",
        "--name",
        "Initech",
        "--username",
        "initech-boss",
        "--email",
        "boss@initech.example",
        home=home,
        stdin="Stapler-Red-Swingline-9\n",
    )
    assert created.returncode == 0, created.stderr
    assert tmc("audit", "anchor", home=home).returncode == 0
    good = tmc("audit", "verify", home=home)
    assert good.returncode == 0, good.stderr
    assert "verifies" in good.stdout

    with sqlite3.connect(home / "tmc.sqlite3") as database:
        database.execute("UPDATE audit_event SET actor_label = 'x' WHERE id = 1")

    bad = tmc("audit", "verify", home=home)
    assert bad.returncode != 0
    assert "BROKEN org:1: event 1 (id 1) was changed" in bad.stderr


def test_prune_by_command_keeps_verify_green(
    tenant_a: Tenant, settings: Any, tmp_path: Path
) -> None:
    settings.TMC_AUDIT_ANCHOR_FILE = tmp_path / "anchors.log"

    call_command("audit", "prune", "--days", "1")
    call_command("audit", "verify")

    assert Event.objects.filter(chain=_chain(tenant_a)).exists()


# --- concurrency ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_one_chain_never_fork_it() -> None:
    """I7: eight writers at once still give one chain, each link once."""
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    tenant = make_tenant("Umbrella")
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def write() -> None:
        try:
            start.wait()
            for _ in range(10):
                with transaction.atomic():
                    event_record(action="login.succeeded", actor=tenant.user)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=write) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    head = ChainHead.objects.get(chain=_chain(tenant))
    assert Event.objects.filter(chain=head.chain).count() == head.last_sequence
    assert chains_verify().ok


def test_an_event_written_on_a_whole_second_still_verifies(
    tenant_a: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Times without a fraction are stored without one; the hash must agree."""
    whole = timezone.now().replace(microsecond=0)
    monkeypatch.setattr("tmc.audit.services.timezone.now", lambda: whole)

    event_record(action="test.whole_second", organisation=tenant_a.organisation)

    assert Event.objects.get(action="test.whole_second").created_at == whole
    assert chains_verify().ok


# --- the hashed format ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["plain", 'quote " and back\\slash', "tab\tnew\nline\x01", "é ü 漢字 🙂", ""],
)
@pytest.mark.parametrize("address", [None, "192.0.2.1", "2001:db8::1"])
def test_the_hash_is_of_the_sorted_compact_json_of_the_event(
    text: str, address: str | None
) -> None:
    """I7: the hand-written canonical object is the general encoder's, byte
    for byte, so stored chains keep verifying."""
    import hashlib
    import json

    from tmc.audit.chain import VERSION, event_hash

    fields: dict[str, Any] = {
        "chain": "org:7",
        "sequence": 12,
        "created_at": timezone.now(),
        "actor_kind": "user",
        "actor_ref": "3",
        "actor_label": f"user:{text}",
        "action": "contact.updated",
        "target_type": "contact",
        "target_id": "41",
        "details": {"b": [1, 2.5, None, True], "a": {"z": text, "y": {}}},
        "ip_address": address,
        "user_agent": text,
        "request_id": "r-1",
        "previous_hash": "ab" * 32,
    }
    payload = {**fields, "v": VERSION}
    payload["created_at"] = fields["created_at"].isoformat(timespec="microseconds")
    reference = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )

    assert event_hash(fields) == hashlib.sha256(reference.encode()).hexdigest()
