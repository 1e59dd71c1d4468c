"""Record activity, and prove later that the record was not edited.

Call ``event_record`` inside the transaction of the change it records: the
event commits or rolls back with it. Events form one hash chain per
organisation and one for the platform; ``chains_verify`` walks them,
``anchors_write`` copies each chain's latest hash to a log file outside the
database, and ``events_prune`` removes old events without breaking a chain.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.audit.chain import (
    HashedText,
    canonical_json,
    canonical_time,
    hashed_parts,
    text_hash,
)
from tmc.audit.models import GENESIS_HASH, ActorKind, ChainHead, Event, chain_key
from tmc.audit.store import chain_rows, event_append, events_append
from tmc.identity.models import User
from tmc.lib.phone import MASK, mask_number
from tmc.lib.spreadsheet import csv_cell

logger = logging.getLogger(__name__)

# Set by tmc.audit.middleware.RequestIdMiddleware for the length of a request.
REQUEST_ID: ContextVar[str] = ContextVar("tmc_request_id", default="")

MASKED = "[masked]"
# Words that mark a key's string value as confidential wherever it appears
# (``new_password``, ``device_token``, ``body``...). Numbers and flags under
# such keys stay: ``second_password_required: true`` discloses nothing.
CONFIDENTIAL_WORDS = frozenset(
    {
        "password",
        "passwords",
        "secret",
        "token",
        "body",
        "text",
        "otp",
        "totp",
        "code",
        "cookie",
        "pin",
    }
)
NUMBER_WORDS = frozenset({"mobile", "number", "phone", "recipient", "msisdn"})
# Anything that looks like a phone number, under whatever key and inside free
# text too; nine digits or more, so that dates and small counts pass. A run
# of digits that is not a number is masked as well: better than a leak.
PHONE_LIKE = re.compile(r"\+?\(?\d[\d\s().-]{7,22}\d")
PHONE_PUNCTUATION = re.compile(r"[\s().-]")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def current_request_id() -> str:
    return REQUEST_ID.get()


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR is the proxy's address behind a proxy; uvicorn's
    # proxy_headers rewrites it from X-Forwarded-For for trusted proxies.
    raw = request.META.get("REMOTE_ADDR") or ""
    try:
        return ipaddress.ip_address(raw).compressed
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _key_marks(key: str) -> tuple[bool, bool]:
    """Whether a key marks its value confidential, and whether a number.

    Cached: details use a small vocabulary of keys, and every recorded
    action masks its details.
    """
    words = set(re.split(r"[^a-z0-9]+", key.lower()))
    return bool(words & CONFIDENTIAL_WORDS), bool(words & NUMBER_WORDS)


def _mask_value(value: Any, *, confidential: bool, number: bool) -> Any:
    if isinstance(value, str):
        if confidential:
            return MASKED
        if number and any(char.isdigit() for char in value):
            return _number_mask(value)
        return PHONE_LIKE.sub(_number_in_text, CONTROL_CHARACTERS.sub("", value))
    if isinstance(value, dict):
        masked = {}
        for key, inner in value.items():
            name = str(key)
            secret, numeric = _key_marks(name)
            masked[name] = _mask_value(
                inner, confidential=confidential or secret, number=number or numeric
            )
        return masked
    if isinstance(value, list | tuple | set | frozenset):
        return [
            _mask_value(inner, confidential=confidential, number=number)
            for inner in value
        ]
    return value


def _number_in_text(found: re.Match[str]) -> str:
    text = found.group()
    return _number_mask(text) if sum(c.isdigit() for c in text) >= 9 else text


def _number_mask(value: str) -> str:
    """The platform's masked form of a number; for a national or malformed
    one, every digit but the last two hidden."""
    compact = PHONE_PUNCTUATION.sub("", value)
    if compact.startswith("+"):
        masked = mask_number(compact)
        if any(char.isdigit() for char in masked):
            return masked
    positions = [i for i, char in enumerate(compact) if char.isdigit()]
    hidden = set(positions[:-2])
    return "".join(MASK if i in hidden else c for i, c in enumerate(compact))


def details_mask(details: dict[str, Any]) -> dict[str, Any]:
    """Return ``details`` fit for the log: no secrets, bodies or full numbers.

    Strings under confidential keys become ``[masked]``; anything shaped like
    a phone number, or under a number key, keeps only its outer digits. The
    result is plain JSON (dates become ISO strings), so what is hashed is
    exactly what the database gives back.
    """
    plain: dict[str, Any] = json.loads(_details_json(details))
    return plain


def _details_json(details: dict[str, Any]) -> str:
    """The masked details as canonical JSON: hashed and stored as they are."""
    masked = _mask_value(details, confidential=False, number=False)
    return json.dumps(
        masked,
        cls=DjangoJSONEncoder,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _actor(
    actor: User | None,
    kind: str | None,
    ref: str,
    label: str,
    request: HttpRequest | None,
) -> tuple[str, str, str]:
    if kind is None:
        prefix = label.partition(":")[0] if ":" in label else ""
        if actor is not None:
            kind = ActorKind.USER
        elif prefix in ActorKind.values:
            # A label written as "staff:jsmith" or "system:command line".
            kind = ActorKind(prefix)
        else:
            # Someone over the web whom we cannot name yet, or the platform.
            kind = ActorKind.ANONYMOUS if request is not None else ActorKind.SYSTEM
    if actor is not None:
        ref = ref or str(actor.pk)
        label = label or f"user:{actor.username}"
    return str(kind), ref[:64], (label or str(kind))[:200]


def event_record(
    *,
    action: str,
    organisation: Organisation | None = None,
    actor: User | None = None,
    actor_label: str = "",
    actor_kind: str | None = None,
    actor_ref: str = "",
    target: Any = None,
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    request_id: str | None = None,
) -> Event:
    """Append one event to its organisation's chain (or the platform's).

    ``actor`` is a client user; for anyone else give ``actor_kind``
    (``ActorKind.STAFF``, ``API_KEY``, ``SYSTEM``) with ``actor_ref`` (their
    id) and ``actor_label`` (a readable name, e.g. ``staff:jsmith``). The
    organisation defaults to the actor's. The request id defaults to the
    current request's (``RequestIdMiddleware``).
    """
    if organisation is None and actor is not None:
        organisation = actor.organisation
    event, details_json = _event_new(
        action=action,
        organisation=organisation,
        actor=actor,
        actor_kind=actor_kind,
        actor_ref=actor_ref,
        actor_label=actor_label,
        target=target,
        details=details,
        request=request,
        request_id=request_id,
    )
    # No savepoint: if the append fails, the change it records must not
    # commit either, so the caller's transaction is left to roll back.
    with transaction.atomic(savepoint=False):
        _append(event, details_json)
    logger.info(
        "event %s id=%s organisation_id=%s actor=%s:%s",
        action,
        event.pk,
        organisation.pk if organisation else None,
        event.actor_kind,
        event.actor_ref,
    )
    return event


def events_record(
    *,
    action: str,
    organisation: Organisation | None,
    actor_kind: str,
    entries: Sequence[tuple[Any, dict[str, Any]]],
    actor_ref: str = "",
    actor_label: str = "",
) -> int:
    """Append one event per ``(target, details)`` to one chain, all at once.

    For work done in batches (replies matched by the hundred): the chain's
    head is locked and moved once and the events go in with one
    ``executemany``, in the caller's transaction as with ``event_record``.
    Returns how many were recorded.
    """
    events = [
        _event_new(
            action=action,
            organisation=organisation,
            actor=None,
            actor_kind=actor_kind,
            actor_ref=actor_ref,
            actor_label=actor_label,
            target=target,
            details=details,
            request=None,
            request_id=None,
        )
        for target, details in entries
    ]
    if events:
        with transaction.atomic(savepoint=False):
            _append_many(events)
        logger.info(
            "events %s count=%s organisation_id=%s",
            action,
            len(events),
            organisation.pk if organisation else None,
        )
    return len(events)


def _event_new(
    *,
    action: str,
    organisation: Organisation | None,
    actor: User | None,
    actor_kind: str | None,
    actor_ref: str,
    actor_label: str,
    target: Any,
    details: dict[str, Any] | None,
    request: HttpRequest | None,
    request_id: str | None,
) -> tuple[Event, str]:
    """The event, not yet linked, and its masked details as canonical JSON."""
    kind, ref, label = _actor(actor, actor_kind, actor_ref, actor_label, request)
    user_agent = request.META.get("HTTP_USER_AGENT", "") if request else ""
    details_json = _details_json(details or {})
    event = Event(
        organisation=organisation,
        actor=actor,
        actor_kind=kind,
        actor_ref=ref,
        actor_label=label,
        action=action[:64],
        target_type=_target_type(target),
        target_id=(
            str(getattr(target, "pk", "") or "")[:64] if target is not None else ""
        ),
        # What the caller reads back is what the database will give back.
        details=json.loads(details_json),
        ip_address=client_address(request),
        user_agent=CONTROL_CHARACTERS.sub("", user_agent)[:300],
        request_id=(current_request_id() if request_id is None else request_id)[:64],
    )
    return event, details_json


def _target_type(target: Any) -> str:
    if target is None:
        return ""
    # ``_meta`` also sees through request.user's lazy wrapper.
    meta = getattr(target, "_meta", None)
    name = meta.model_name if meta is not None else type(target).__name__.lower()
    return str(name)[:40]


def _append(event: Event, details_json: str) -> None:
    """Join ``event`` to its chain: set its chain and time, hash, insert."""
    event.chain = chain_key(event.organisation_id)
    # Taken before the head is locked; a concurrent writer may link its event
    # first with a time a few microseconds later. Pruning only ever removes
    # the events before a chain's first one at or after the cut-off, so such
    # an inversion at worst keeps an event one prune longer.
    event.created_at = timezone.now()
    event_append(event, _hashed(event, details_json), details_json)


def _append_many(events: list[tuple[Event, str]]) -> None:
    """``_append`` for several events of one chain: one lock, one insert."""
    key = chain_key(events[0][0].organisation_id)
    moment = timezone.now()
    for event, _ in events:
        assert chain_key(event.organisation_id) == key
        event.chain = key
        event.created_at = moment
    events_append(
        [
            (event, _hashed(event, details_json), details_json)
            for event, details_json in events
        ]
    )


def _hashed(event: Event, details_json: str) -> HashedText:
    return hashed_parts(
        action=event.action,
        actor_kind=event.actor_kind,
        actor_label=event.actor_label,
        actor_ref=event.actor_ref,
        chain=event.chain,
        created_at=canonical_time(event.created_at),
        details_json=details_json,
        ip_address=event.ip_address,
        request_id=event.request_id,
        target_id=event.target_id,
        target_type=event.target_type,
        user_agent=event.user_agent,
    )


# --- reading the log --------------------------------------------------------------

LOGIN_ACTIONS = ("login.", "logout.", "second_factor.", "device.", "session.")
EXPORT_COLUMNS = (
    "when",
    "actor_kind",
    "actor",
    "action",
    "target_type",
    "target_id",
    "details",
    "ip_address",
    "user_agent",
    "request_id",
    "chain",
    "sequence",
    "hash",
)


@dataclass(frozen=True)
class EventFilter:
    action: str = ""
    actor: str = ""
    date_from: date | None = None
    date_to: date | None = None

    def as_details(self) -> dict[str, str]:
        return {
            key: str(value)
            for key, value in (
                ("action", self.action),
                ("actor", self.actor),
                ("date_from", self.date_from or ""),
                ("date_to", self.date_to or ""),
            )
            if value
        }


def events_for_organisation(
    organisation: Organisation, wanted: EventFilter
) -> QuerySet[Event]:
    """The organisation's events, newest first, narrowed by ``wanted``."""
    events = Event.objects.for_organisation(organisation)
    if wanted.action:
        events = events.filter(action__startswith=wanted.action)
    if wanted.actor:
        events = events.filter(actor_label__icontains=wanted.actor)
    if wanted.date_from:
        events = events.filter(created_at__gte=_day_start(wanted.date_from))
    if wanted.date_to:
        events = events.filter(
            created_at__lt=_day_start(wanted.date_to + timedelta(days=1))
        )
    return events.order_by("-created_at", "-id")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def login_history(user: User) -> QuerySet[Event]:
    """A user's own log-ins, failures, log-outs, second factor and devices."""
    wanted = Q()
    for prefix in LOGIN_ACTIONS:
        wanted |= Q(action__startswith=prefix)
    return (
        Event.objects.for_user(user)
        .filter(wanted, actor=user)
        .order_by("-created_at", "-id")
    )


def activity_export(
    *, user: User, wanted: EventFilter, request: HttpRequest | None = None
) -> Iterator[list[str]]:
    """Record the export, then give the rows of a CSV of the filtered log.

    Exporting needs the export permission on top of the log's own; the
    export is itself an event, committed before the first row is read, so
    an export cut short is still on record.
    """
    if not (user.is_manager and user.can_view_reports and user.can_export):
        raise PermissionDenied("Exporting the activity log needs the export right.")
    events = events_for_organisation(user.organisation, wanted)
    with transaction.atomic():
        event_record(
            action="activity.exported",
            actor=user,
            target=user.organisation,
            details={"filters": wanted.as_details(), "rows": events.count()},
            request=request,
        )
    return _export_rows(events)


def _export_rows(events: QuerySet[Event]) -> Iterator[list[str]]:
    yield list(EXPORT_COLUMNS)
    for event in events.iterator(chunk_size=2000):
        row = [
            canonical_time(event.created_at),
            event.actor_kind,
            event.actor_label,
            event.action,
            event.target_type,
            event.target_id,
            json.dumps(event.details, sort_keys=True, ensure_ascii=False),
            event.ip_address or "",
            event.user_agent,
            event.request_id,
            event.chain,
            str(event.sequence),
            event.hash,
        ]
        # The user agent, at least, is whatever the client sent.
        yield [csv_cell(value) for value in row]


# --- verification ---------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A chain's hash at one sequence, as written to the anchor log."""

    chain: str
    sequence: int
    hash: str


@dataclass
class VerifyReport:
    chains: int = 0
    events: int = 0
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def anchors_read(path: Path) -> list[Anchor]:
    """Every anchor in the log; a line that is not an anchor is a problem."""
    if not path.exists():
        return []
    anchors = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                anchors.append(
                    Anchor(str(row["chain"]), int(row["sequence"]), str(row["hash"]))
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path} line {number} is not an anchor") from exc
    return anchors


def _row_hash(row: tuple[Any, ...]) -> str:
    """The hash a ``chain_rows`` row should carry, from its contents."""
    (
        _,
        chain,
        sequence,
        moment,
        actor_kind,
        actor_ref,
        actor_label,
        action,
        target_type,
        target_id,
        details,
        ip_address,
        user_agent,
        request_id,
        previous_hash,
        _,
    ) = row
    if moment[10] == " ":
        # SQLite keeps times as naive UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]":
        # rewritten straight into the canonical form, which is cheaper than
        # a round trip through datetime on a walk over every event.
        fraction = "" if "." in moment else ".000000"
        moment = f"{moment[:10]}T{moment[11:]}{fraction}+00:00"

    def digest(details_json: str) -> str:
        parts = hashed_parts(
            action=action,
            actor_kind=actor_kind,
            actor_label=actor_label,
            actor_ref=actor_ref,
            chain=chain,
            created_at=moment,
            details_json=details_json,
            ip_address=ip_address,
            request_id=request_id,
            target_id=target_id,
            target_type=target_type,
            user_agent=user_agent,
        )
        return text_hash(parts.text(previous_hash, sequence))

    if not isinstance(details, str):
        return digest(canonical_json(details))
    # SQLite gives JSON back as its stored text. Events written by
    # ``event_record`` store the canonical text that was hashed, so it hashes
    # as it is; older rows were stored in Django's own layout, and only
    # they pay for parsing and writing it out again.
    hashed = digest(details)
    if hashed != row[-1]:
        hashed = digest(canonical_json(json.loads(details)))
    return hashed


def _chain_walk(
    head: ChainHead, anchored: dict[int, str], report: VerifyReport
) -> str | None:
    """Walk one chain; return the first problem, or None if it holds."""
    expected_sequence = head.base_sequence + 1
    previous = head.base_hash
    for row in chain_rows(head.chain):
        pk, sequence, stored = row[0], row[2], row[-1]
        report.events += 1
        if sequence != expected_sequence:
            return (
                f"{head.chain}: event {expected_sequence} is missing "
                f"(the next is {sequence}, id {pk})"
            )
        if row[-2] != previous:
            return (
                f"{head.chain}: event {sequence} (id {pk}) does not link to "
                "the event before it"
            )
        if _row_hash(row) != stored:
            return (
                f"{head.chain}: event {sequence} (id {pk}) was changed after it "
                "was written (its hash does not match its contents)"
            )
        if anchored.get(sequence, stored) != stored:
            return (
                f"{head.chain}: event {sequence} (id {pk}) differs from the "
                "anchor log: the chain was rewritten"
            )
        previous = stored
        expected_sequence += 1
    if expected_sequence - 1 != head.last_sequence or previous != head.last_hash:
        return (
            f"{head.chain}: the chain ends at event {expected_sequence - 1} but "
            f"its head records event {head.last_sequence}"
        )
    return None


def _anchor_problems(head: ChainHead, anchors: list[Anchor]) -> list[str]:
    problems = []
    for anchor in anchors:
        if anchor.sequence > head.last_sequence:
            problems.append(
                f"{head.chain}: the anchor log records event {anchor.sequence}, "
                f"but the chain ends at {head.last_sequence}: events were removed"
            )
        elif anchor.sequence == head.base_sequence and anchor.hash != head.base_hash:
            problems.append(
                f"{head.chain}: the pruned chain's starting hash differs from "
                "the anchor log"
            )
    if head.base_sequence and not any(
        a.sequence == head.base_sequence and a.hash == head.base_hash for a in anchors
    ):
        problems.append(
            f"{head.chain}: the chain starts after event {head.base_sequence}, "
            "but no anchor records that prune"
        )
    return problems


def chains_verify(*, anchors_path: Path | None = None) -> VerifyReport:
    """Check every chain from its start (or last prune) to its head.

    Reports the first broken link of each chain: a missing event, an event
    whose hash no longer matches its contents, one that does not link to its
    predecessor, and, given the anchor log, any disagreement with the hashes
    anchored there, which is what catches a rewrite of the whole table.
    """
    report = VerifyReport()
    anchors = anchors_read(anchors_path) if anchors_path else []
    report.anchors = len(anchors)
    by_chain: dict[str, list[Anchor]] = {}
    for anchor in anchors:
        by_chain.setdefault(anchor.chain, []).append(anchor)

    heads = list(ChainHead.objects.order_by("chain"))
    known = {head.chain for head in heads}
    for head in heads:
        report.chains += 1
        chain_anchors = by_chain.get(head.chain, [])
        report.problems.extend(_anchor_problems(head, chain_anchors))
        anchored = {
            a.sequence: a.hash for a in chain_anchors if a.sequence > head.base_sequence
        }
        problem = _chain_walk(head, anchored, report)
        if problem:
            report.problems.append(problem)
    for chain in sorted(set(by_chain) - known):
        report.problems.append(
            f"{chain}: the anchor log records this chain, but the database "
            "has none: it was removed"
        )
    orphans = Event.objects.exclude(chain__in=known).values_list("chain", flat=True)
    for chain in sorted(set(orphans)):
        report.problems.append(f"{chain}: events without a chain head")
    return report


# --- anchors and retention -----------------------------------------------------------


def _anchor_append(path: Path, anchors: list[Anchor], *, kind: str) -> None:
    """Append anchors to the log in one write; the log is only ever appended."""
    if not anchors:
        return
    at = canonical_time(timezone.now())
    text = "".join(
        json.dumps(
            {
                "at": at,
                "kind": kind,
                "chain": a.chain,
                "sequence": a.sequence,
                "hash": a.hash,
            },
            sort_keys=True,
        )
        + "\n"
        for a in anchors
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, text.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def anchors_write(*, path: Path) -> int:
    """Write the latest hash of each chain that grew since its last anchor.

    Anyone able to rewrite the events table can recompute every hash; they
    cannot also change what was copied out of the database earlier. Keep the
    log where the database's users cannot write (or ship it elsewhere).
    """
    anchored: dict[str, int] = {}
    for anchor in anchors_read(path):
        anchored[anchor.chain] = max(anchored.get(anchor.chain, 0), anchor.sequence)
    fresh = [
        Anchor(head.chain, head.last_sequence, head.last_hash)
        for head in ChainHead.objects.order_by("chain")
        if head.last_sequence > anchored.get(head.chain, 0)
    ]
    _anchor_append(path, fresh, kind="anchor")
    logger.info("audit anchors written count=%s", len(fresh))
    return len(fresh)


@dataclass(frozen=True)
class PruneReport:
    chains: int
    events: int


def events_prune(*, before: datetime, anchors_path: Path) -> PruneReport:
    """Remove each chain's events older than ``before``, from its start.

    Only a leading run of old events goes, so what remains still links
    together; the hash of the last event removed becomes the chain's base
    and is written to the anchor log first, so verify can tell a prune from
    someone deleting the start of a chain.
    """
    chains = events = 0
    for chain in ChainHead.objects.order_by("chain").values_list("chain", flat=True):
        with transaction.atomic():
            head = ChainHead.objects.select_for_update().get(chain=chain)
            first_kept = (
                Event.objects.filter(chain=chain, created_at__gte=before)
                .order_by("sequence")
                .values_list("sequence", flat=True)
                .first()
            )
            through = head.last_sequence if first_kept is None else first_kept - 1
            if through <= head.base_sequence:
                continue
            base = Event.objects.filter(chain=chain, sequence=through).values_list(
                "hash", flat=True
            )
            base_hash = base.first() or GENESIS_HASH
            # Anchor before deleting: if the deletion then fails, the anchor
            # still matches the event it names, so verify stays green.
            _anchor_append(
                anchors_path, [Anchor(chain, through, base_hash)], kind="prune"
            )
            deleted, _ = Event.objects.filter(
                chain=chain, sequence__lte=through
            ).delete()
            ChainHead.objects.filter(pk=head.pk).update(
                base_sequence=through, base_hash=base_hash
            )
        chains += 1
        events += deleted
        logger.info("audit chain pruned chain=%s through=%s", chain, through)
    return PruneReport(chains=chains, events=events)
