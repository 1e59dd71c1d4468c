"""How fast ``tmc keys rotate --org`` re-encrypts an address book.

    .venv/bin/python bench/key_rotation.py [--rows 50000] [--database-url URL]

Imports ``--rows`` contacts into one organisation and a fifth as many into
another (whose rows the rotation must step over), then rotates the first
organisation's data key in 500-row batches and prints rows/s and values/s,
and the time one batch holds its transaction on average.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_start

PASSWORD = "Bench-Horse-Battery-42"  # noqa: S105  # nosec B105


def _csv(rows: int, first: int) -> bytes:
    lines = ["Name,Mobile,Email"] + [
        f"Person {i},074{first + i:08d},person{i}@example.com" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--database-url", default="")
    arguments = parser.parse_args()
    label = django_start(arguments.database_url)
    logging.disable(logging.INFO)

    from tmc.accounts import encryption
    from tmc.accounts.keyrotation import BATCH_ROWS, organisation_key_rotate
    from tmc.accounts.services import account_create
    from tmc.contacts.importing import import_map, import_prepare, import_run
    from tmc.contacts.models import Contact

    organisations = []
    for name, rows, first in (
        ("Bench Ltd", arguments.rows, 0),
        ("Other Ltd", arguments.rows // 5, 5_000_000),
    ):
        organisation, controller = account_create(
            name=name,
            controller_username=name.split()[0].lower(),
            controller_email=f"{name.split()[0].lower()}@example.com",
            controller_password=PASSWORD,
        )
        job = import_prepare(
            user=controller, file_name="bench.csv", data=_csv(rows, first)
        )
        import_map(user=controller, job=job, mapping=job.mapping, enqueue=False)
        import_run(job_id=job.pk)
        organisations.append(organisation)
    print(f"database: {label}; rows: {arguments.rows:,} (+{arguments.rows // 5:,})")

    batches = 0

    def count(done: int, total: int) -> None:
        nonlocal batches
        batches += 1

    started = time.perf_counter()
    rotation = organisation_key_rotate(
        organisation=organisations[0], settle_seconds=0, progress=count
    )
    took = time.perf_counter() - started

    assert rotation.finished, rotation
    tokens = Contact.objects.filter(organisation=organisations[0]).values_list(
        "details_sealed", flat=True
    )
    assert {encryption.key_id_of(t) for t in tokens} == {rotation.key_id}
    print(
        f"rotation: {rotation.rows:,} rows, {rotation.values:,} values in "
        f"{took:.2f} s: {rotation.rows / took:,.0f} rows/s, "
        f"{rotation.values / took:,.0f} values/s"
    )
    print(
        f"batches of {BATCH_ROWS}: {batches}, "
        f"{1000 * took / max(batches, 1):.0f} ms each on average"
    )


if __name__ == "__main__":
    main()
