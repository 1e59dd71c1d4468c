"""How fast a CSV of contacts imports, next to a plain insert of the same rows.

    .venv/bin/python bench/contacts_import.py [--rows 100000] [--database-url URL]

Prints rows/s for ``tmc contacts import``'s path (decode, parse, normalise
to E.164, blind index, AES-GCM, merge check, insert in 1,000-row batches,
with TMC_IMPORT_PROCESSES worker processes) and for a plain ``executemany``
of the same rows' plaintext into a narrow table (name, number, email) with
a unique index on the number, in 1,000-row transactions, on the same
database in the same run; the ratio of the two (target: at least 0.5); and
the process's peak memory (target: under 300 MB; a worker process's is not
in it, and ``ru_maxrss`` cannot tell it: a spawned child starts from a fork
of this process). Then, for an honest second floor, the same plaintext rows inserted
into a copy of the contact table itself (same columns, same keys and
indexes) by ``executemany`` in 1,000-row transactions and, on PostgreSQL,
by one ``COPY``; and the import's ratio to each.
"""

from __future__ import annotations

import argparse
import logging
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start, table_copy

BATCH = 1000
PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105


def _csv(rows: int) -> tuple[bytes, list[tuple[str, str, str]]]:
    generator = random.Random(7)  # noqa: S311  # nosec B311
    numbers = generator.sample(range(10_000_000), rows)
    # 07400 0000000 to 07409 999999: UK mobile numbers, all valid.
    people = [
        (f"Person {i}", f"074{n:08d}", f"person{i}@example.com")
        for i, n in enumerate(numbers)
    ]
    lines = ["Name,Mobile,Email"] + [",".join(person) for person in people]
    return ("\n".join(lines) + "\n").encode(), people


def _plain_insert(people: list[tuple[str, str, str]], organisation_id: int) -> float:
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_plain_contact (id integer PRIMARY KEY, "
            "organisation_id integer NOT NULL, name text NOT NULL, "
            "number text NOT NULL, email text NOT NULL)"
            if connection.vendor == "sqlite"
            else "CREATE TABLE bench_plain_contact (id serial PRIMARY KEY, "
            "organisation_id integer NOT NULL, name text NOT NULL, "
            "number text NOT NULL, email text NOT NULL)"
        )
        cursor.execute(
            "CREATE UNIQUE INDEX bench_plain_number "
            "ON bench_plain_contact (organisation_id, number)"
        )
    started = time.perf_counter()
    for start in range(0, len(people), BATCH):
        rows = [
            (organisation_id, name, number, email)
            for name, number, email in people[start : start + BATCH]
        ]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO bench_plain_contact "
                "(organisation_id, name, number, email) VALUES (%s, %s, %s, %s)",
                rows,
            )
    return time.perf_counter() - started


def _shaped_rows(
    people: list[tuple[str, str, str]], organisation_id: int
) -> list[tuple[Any, ...]]:
    """The contacts' rows as the import writes them, but in plaintext."""
    import json
    import uuid

    from django.db import connection
    from django.utils import timezone

    from tmc.contacts.models import Contact

    uid = Contact._meta.get_field("uid")
    when = Contact._meta.get_field("updated_at").get_db_prep_value(
        timezone.now(), connection, prepared=False
    )
    return [
        (
            organisation_id,
            uid.get_db_prep_value(uuid.uuid4(), connection, prepared=False),
            number,
            number,
            json.dumps({"name": name, "email": email, "fields": {}}),
            when,
            when,
        )
        for name, number, email in people
    ]


_SHAPED_COLUMNS = ("organisation_id", "uid", "number_sealed", "number_index",
                   "details_sealed", "created_at", "updated_at")  # fmt: skip


def _shaped_insert(rows: list[tuple[Any, ...]], *, copy: bool) -> float:
    """Insert the plaintext rows into a table of the contact table's shape,
    by ``executemany`` in 1,000-row transactions or (PostgreSQL) one COPY."""
    from django.db import connection, transaction

    from tmc.bulkinsert import rows_insert
    from tmc.contacts.models import Contact

    table = "bench_shaped"
    table_copy(Contact._meta.db_table, table)
    started = time.perf_counter()
    if copy:
        with transaction.atomic():
            rows_insert(table, _SHAPED_COLUMNS, rows)
    else:
        insert = (
            f"INSERT INTO {table} ({', '.join(_SHAPED_COLUMNS)}) "  # noqa: S608
            f"VALUES ({', '.join(['%s'] * len(_SHAPED_COLUMNS))})"
        )
        for start in range(0, len(rows), BATCH):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(insert, rows[start : start + BATCH])
    took = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    arguments = parser.parse_args()
    label = django_start(arguments.database_url)
    logging.disable(logging.INFO)

    from tmc.accounts.services import account_create
    from tmc.contacts.importing import import_map, import_prepare, import_run
    from tmc.contacts.models import Contact

    organisation, controller = account_create(
        name="Bench Ltd",
        controller_username="bench",
        controller_email="bench@example.com",
        controller_password=PASSWORD,
    )
    data, people = _csv(arguments.rows)
    print(
        f"database: {label}; rows: {arguments.rows:,}; file: {len(data) / 1e6:.1f} MB"
    )

    plain = _plain_insert(people, organisation.pk)
    print(
        f"plain executemany insert: {arguments.rows / plain:,.0f} rows/s "
        f"({plain:.2f} s)"
    )

    started = time.perf_counter()
    job = import_prepare(user=controller, file_name="bench.csv", data=data)
    import_map(user=controller, job=job, mapping=job.mapping, enqueue=False)
    job = import_run(job_id=job.pk)
    took = time.perf_counter() - started
    assert job.created_count == arguments.rows, job.problems[:5]
    assert Contact.objects.filter(organisation=organisation).count() == arguments.rows

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"import (validate, encrypt, merge, insert): {arguments.rows / took:,.0f} "
        f"rows/s ({took:.2f} s)"
    )
    print(f"ratio import / plain insert: {plain / took:.2f} (target >= 0.5)")
    print(f"peak memory of the process: {peak:,.0f} MB (target < 300 MB)")

    # After the import, so that their rows do not count in its peak memory.
    from django.db import connection

    shaped_rows = _shaped_rows(people, organisation.pk)
    shaped = {"executemany": _shaped_insert(shaped_rows, copy=False)}
    if connection.vendor == "postgresql":
        shaped["COPY"] = _shaped_insert(shaped_rows, copy=True)
    del shaped_rows
    for how, seconds in shaped.items():
        print(
            f"plain {how} into a table of the contact table's shape: "
            f"{arguments.rows / seconds:,.0f} rows/s ({seconds:.2f} s)"
        )

    for how, seconds in shaped.items():
        print(f"ratio import / plain {how}, same shape: {seconds / took:.2f}")


if __name__ == "__main__":
    main()
