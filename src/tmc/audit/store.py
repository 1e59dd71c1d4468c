"""The activity log's two hot paths, written for each database.

Every recorded action appends an event, and ``tmc audit verify`` reads every
stored one, so both speak the driver's SQL directly: the ORM's query
building, and even Django's cursor wrapper (its placeholder rewriting costs
SQLite more than the statement itself), cost more than the work.

- SQLite appends with three statements on the driver's own cursor (read the
  chain head, insert, move the head); ``sqlite3`` keeps each statement
  prepared in its per-connection cache, keyed by the unchanging SQL text.
- PostgreSQL appends with one statement that locks the head, computes the
  new event's SHA-256 in the server from the parts Python hands it (see
  ``tmc.audit.chain.HashedText``), inserts the event and moves the head.

These statements bypass Django's cursor, so they do not show in
``connection.queries`` or query counts. Database errors still arrive as
Django's own exceptions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from django.db import connection

from tmc.audit.chain import HASHED_FIELDS, HashedText, text_hash
from tmc.audit.models import ChainHead, Event

# The event's columns in the order both appends write them.
COLUMNS = (
    "chain",
    "sequence",
    "organisation_id",
    "actor_id",
    "actor_kind",
    "actor_ref",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "details",
    "ip_address",
    "user_agent",
    "request_id",
    "created_at",
    "previous_hash",
    "hash",
)
EVENT_TABLE = Event._meta.db_table
HEAD_TABLE = ChainHead._meta.db_table


def _columns_match_the_model() -> None:
    model = {f.column for f in Event._meta.concrete_fields if not f.primary_key}
    assert model == set(COLUMNS), f"audit event columns changed: {model ^ set(COLUMNS)}"


def event_append(event: Event, parts: HashedText, details_json: str) -> None:
    """Link ``event`` to the end of its chain and insert it.

    ``event.chain`` and ``event.created_at`` are set; this fills in
    ``sequence``, ``previous_hash``, ``hash`` and the primary key. Call it in
    the caller's transaction: the head stays locked until that commits.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            appended = _postgres_append(event, parts, details_json)
            if appended is None:
                _head_create(event.chain)
                appended = _postgres_append(event, parts, details_json)
        else:
            appended = _sqlite_append(event, parts, details_json)
    assert appended is not None
    event.pk, event.sequence, event.previous_hash, event.hash = appended
    event._state.adding = False


def _head_create(chain: str) -> None:
    # The first event of a chain: two creators race on the unique chain key;
    # the loser re-reads the winner's row, and both then lock it.
    ChainHead.objects.get_or_create(chain=chain)


def _values(event: Event, details_json: str) -> list[Any]:
    """The columns before the link (chain to created_at), as the driver takes them."""
    return [
        event.chain,
        event.organisation_id,
        event.actor_id,
        event.actor_kind,
        event.actor_ref,
        event.actor_label,
        event.action,
        event.target_type,
        event.target_id,
        details_json,
        event.ip_address,
        event.user_agent,
        event.request_id,
    ]


def events_append(events: list[tuple[Event, HashedText, str]]) -> None:
    """``event_append`` for several events of one chain: one lock, one insert.

    For work done in batches, so it goes through Django's cursor, which
    converts values for either database; the per-event cost here is the
    hashing, not the statements.
    """
    chain = events[0][0].chain
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    select = (
        f"SELECT id, last_sequence, last_hash FROM {HEAD_TABLE} "  # noqa: S608  # nosec B608
        f"WHERE chain = %s{lock}"
    )
    with connection.cursor() as cursor:
        # The same head lock as the single append, taken once for the batch.
        cursor.execute(select, [chain])
        head = cursor.fetchone()
        if head is None:
            _head_create(chain)
            cursor.execute(select, [chain])
            head = cursor.fetchone()
        head_id, sequence, previous_hash = head
        rows = []
        for event, parts, details_json in events:
            sequence += 1
            event.sequence = sequence
            event.previous_hash = previous_hash
            event.hash = text_hash(parts.text(previous_hash, sequence))
            previous_hash = event.hash
            values = _values(event, details_json)
            rows.append(
                [
                    values[0],
                    sequence,
                    *values[1:],
                    connection.ops.adapt_datetimefield_value(event.created_at),
                    event.previous_hash,
                    event.hash,
                ]
            )
        cursor.executemany(
            f"INSERT INTO {EVENT_TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608  # nosec B608
            f"VALUES ({', '.join(['%s'] * len(COLUMNS))})",
            rows,
        )
        cursor.execute(
            f"UPDATE {HEAD_TABLE} SET last_sequence = %s, last_hash = %s "  # noqa: S608  # nosec B608
            "WHERE id = %s",
            [sequence, previous_hash, head_id],
        )


# --- SQLite -----------------------------------------------------------------------


@functools.cache
def _sqlite_statements() -> tuple[str, str, str]:
    _columns_match_the_model()
    head = f"SELECT id, last_sequence, last_hash FROM {HEAD_TABLE} WHERE chain = ?"  # noqa: S608  # nosec B608
    insert = (
        f"INSERT INTO {EVENT_TABLE} ({', '.join(COLUMNS)}) "  # noqa: S608  # nosec B608
        f"VALUES ({', '.join('?' * len(COLUMNS))})"
    )
    move = f"UPDATE {HEAD_TABLE} SET last_sequence = ?, last_hash = ? WHERE id = ?"  # noqa: S608  # nosec B608
    return head, insert, move


def _sqlite_append(
    event: Event, parts: HashedText, details_json: str
) -> tuple[int, int, str, str]:
    head_sql, insert_sql, move_sql = _sqlite_statements()
    cursor = connection.connection.cursor()
    try:
        # SQLite has no row locks: a transaction that writes holds the whole
        # database (TMC opens them IMMEDIATE), so the head read here is still
        # the end of the chain when the insert lands.
        head = cursor.execute(head_sql, (event.chain,)).fetchone()
        if head is None:
            _head_create(event.chain)
            head = cursor.execute(head_sql, (event.chain,)).fetchone()
        head_id, last_sequence, previous_hash = head
        sequence = last_sequence + 1
        digest = text_hash(parts.text(previous_hash, sequence))
        values = _values(event, details_json)
        # Stored the way Django stores a time on SQLite: naive UTC text.
        moment = event.created_at.astimezone(UTC).replace(tzinfo=None)
        cursor.execute(
            insert_sql,
            (
                values[0],
                sequence,
                *values[1:],
                moment.isoformat(" "),
                previous_hash,
                digest,
            ),
        )
        pk = cursor.lastrowid
        cursor.execute(move_sql, (sequence, digest, head_id))
    finally:
        cursor.close()
    assert pk is not None
    return pk, sequence, previous_hash, digest


# --- PostgreSQL ----------------------------------------------------------------------


@functools.cache
def _postgres_statement() -> str:
    """The append in one statement: lock the head, hash, insert, move the head.

    Two transactions appending to one chain would both read the same last
    hash and fork the chain. ``FOR UPDATE`` makes the second wait until the
    first commits and then read the new end; the lock lasts to the end of
    the caller's transaction, so record events last in it. With no head
    yet, nothing is inserted and the caller creates the head first.
    """
    _columns_match_the_model()
    known = [c for c in COLUMNS if c not in {"sequence", "created_at"}][:-2]
    casts = {
        "organisation_id": "::bigint",
        "actor_id": "::bigint",
        "details": "::jsonb",
        "ip_address": "::inet",
    }
    selected = [
        *(f"%s{casts.get(c, '')}" for c in known[:1]),
        "linked.sequence",
        *(f"%s{casts.get(c, '')}" for c in known[1:]),
        "%s::timestamptz",
        "linked.previous_hash",
        "linked.hash",
    ]
    return (
        f"WITH head AS (SELECT id, last_sequence + 1 AS sequence, "  # noqa: S608  # nosec B608
        f"last_hash AS previous_hash FROM {HEAD_TABLE} WHERE chain = %s FOR UPDATE), "
        "linked AS (SELECT id, sequence, previous_hash, encode(sha256(convert_to("
        "%s || to_json(previous_hash)::text || %s || sequence::text || %s, "
        "'UTF8')), 'hex') AS hash FROM head), "
        f"moved AS (UPDATE {HEAD_TABLE} SET last_sequence = linked.sequence, "
        f"last_hash = linked.hash FROM linked WHERE {HEAD_TABLE}.id = linked.id) "
        f"INSERT INTO {EVENT_TABLE} ({', '.join(COLUMNS)}) "
        f"SELECT {', '.join(selected)} FROM linked "
        "RETURNING id, sequence, previous_hash, hash"
    )


def _postgres_append(
    event: Event, parts: HashedText, details_json: str
) -> tuple[int, int, str, str] | None:
    with connection.cursor() as cursor:
        cursor.execute(
            _postgres_statement(),
            [
                event.chain,
                parts.before,
                parts.between,
                parts.after,
                *_values(event, details_json),
                event.created_at,
            ],
        )
        row = cursor.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


# --- reading for verify --------------------------------------------------------------


@functools.cache
def _rows_statement() -> str:
    columns = {name: name for name in ("id", *HASHED_FIELDS, "hash")}
    # Times are read as text, which is cheaper than a datetime per row and
    # its conversion back, and safe from the driver's guesses: sqlite3 would
    # parse a column declared datetime into a naive one.
    if connection.vendor == "postgresql":
        columns["created_at"] = (
            "to_char(created_at AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\')'
        )
    else:
        columns["created_at"] = "CAST(created_at AS TEXT)"
    return (
        f"SELECT {', '.join(columns.values())} FROM {EVENT_TABLE} "  # noqa: S608  # nosec B608
        "WHERE chain = %s ORDER BY sequence"
    )


def chain_rows(chain: str) -> Iterator[tuple[Any, ...]]:
    """The chain's events in order, as ``(id, *HASHED_FIELDS, hash)``.

    Times come as text: SQLite's naive UTC (``YYYY-MM-DD HH:MM:SS[.ffffff]``)
    or, on PostgreSQL, already canonical. Details come as stored text on
    SQLite and parsed on PostgreSQL.
    """
    with connection.chunked_cursor() as cursor:
        cursor.execute(_rows_statement(), [chain])
        while rows := cursor.fetchmany(5000):
            yield from rows
