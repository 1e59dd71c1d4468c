"""CSV import into the address book: check the file, map its columns, import.

1. ``import_prepare`` reads the uploaded bytes, refuses a file that is not
   text in the chosen encoding, has no header or no rows, or has a line too
   long to be a contact, and stores it sealed in its ``ImportJob`` with the
   columns mapped as well as their headers allow.
2. ``import_map`` takes the person's choice of columns and queues the job.
3. ``import_run`` (the worker, or ``tmc contacts import``) imports it in
   batches: numbers normalised to E.164, invalid rows reported by line with
   the reason and skipped, numbers already in the book (or repeated in the
   file) merged into one contact. Each batch commits with the job's
   ``next_row``, so a crash loses no counted row and a rerun resumes after
   the last committed batch.

The hot path writes below the ORM (``tmc.bulkinsert``): at 100,000 rows the
ORM's per-object work would cost more than validation and encryption
together.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from tmc.accounts import encryption
from tmc.audit.services import event_record
from tmc.bulkinsert import rows_insert
from tmc.contacts.models import Contact, Group, ImportJob, OptOut
from tmc.contacts.rowwork import (
    Columns,
    Preparer,
    Problem,
    Row,
    worker_prepare,
    worker_start,
)
from tmc.contacts.services import field_key_check, field_key_from_header
from tmc.identity.models import User

logger = logging.getLogger(__name__)

ENCODINGS = {"utf-8": "UTF-8", "cp1252": "Windows-1252 (older Excel)"}
BATCH_ROWS = 1000
MAX_PROBLEMS = 1000
# Below this many rows, starting worker processes costs more than it saves.
POOL_FROM_ROWS = 20_000
# A contact's row is a few hundred characters; anything near this is not one.
MAX_LINE = 20_000
STANDARD_FIELDS = ("number", "name", "first_name", "last_name", "email")
HEADER_GUESSES = {
    "number": {"mobile", "number", "phone", "mobile number", "phone number",
               "mobile phone", "msisdn", "cell", "telephone", "tel"},
    "name": {"name", "full name", "contact", "contact name"},
    "first_name": {"first name", "firstname", "forename", "given name"},
    "last_name": {"last name", "lastname", "surname", "family name"},
    "email": {"email", "e-mail", "email address", "e-mail address"},
}  # fmt: skip

Progress = Callable[[ImportJob], None]


class ImportFileError(ValueError):
    """The file cannot be imported at all; the message says why."""


# --- 1. the file ---------------------------------------------------------------


def _decode(data: bytes, encoding: str) -> str:
    if encoding not in ENCODINGS:
        raise ImportFileError(f"Choose one of: {', '.join(ENCODINGS.values())}.")
    if b"\x00" in data[:65536]:
        raise ImportFileError(
            "This is not a CSV file (it holds binary data). Save it as CSV first."
        )
    try:
        return data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"The file is not {ENCODINGS[encoding]} text (unreadable byte at "
            f"position {exc.start}). Save it as “CSV UTF-8”, or choose the "
            "encoding it was saved in."
        ) from exc


def _reader(text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each non-blank row, header included."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    too_long = (
        "Line {} is longer than {:,} characters: this does not look like a list "
        "of contacts."
    )
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The csv module's own limit on a field is far above MAX_LINE.
            if "field larger than field limit" in str(exc):
                raise ImportFileError(
                    too_long.format(reader.line_num, MAX_LINE)
                ) from exc
            raise ImportFileError(
                f"Line {reader.line_num} is not valid CSV: {exc} (a quote left "
                "open, perhaps)."
            ) from exc
        size = sum(map(len, row))
        if size > MAX_LINE:
            raise ImportFileError(too_long.format(reader.line_num, MAX_LINE))
        if size and any(map(str.strip, row)):
            yield reader.line_num, row


def _headers(text: str) -> tuple[list[str], int]:
    rows = _reader(text)
    first = next(rows, None)
    if first is None:
        raise ImportFileError("The file is empty.")
    headers = [cell.strip() for cell in first[1]]
    if any(not name for name in headers):
        raise ImportFileError(
            "Every column needs a name in the first line (the header)."
        )
    seen: set[str] = set()
    for name in headers:
        if name.lower() in seen:
            raise ImportFileError(f"Two columns are called {name!r}.")
        seen.add(name.lower())
    total = sum(1 for _ in rows)
    if total == 0:
        raise ImportFileError("The file has no rows below its header.")
    return headers, total


def mapping_guess(headers: list[str]) -> dict[str, Any]:
    """Map columns by their headers; the rest become custom fields."""
    mapping: dict[str, Any] = {"fields": {}}
    for header in headers:
        key = " ".join(header.lower().replace("_", " ").split())
        standard = next(
            (name for name, words in HEADER_GUESSES.items() if key in words), None
        )
        if standard and standard not in mapping:
            mapping[standard] = header
            continue
        field_key = field_key_from_header(header)
        if field_key and field_key_check(field_key) is None:
            mapping["fields"].setdefault(field_key, header)
    return mapping


def _file_context(job: ImportJob) -> str:
    return encryption.field_context(ImportJob.TABLE, "file", job.uid)


def import_prepare(
    *, user: User, file_name: str, data: bytes, encoding: str = "utf-8"
) -> ImportJob:
    """Check an uploaded file and keep it, sealed, for the column mapping."""
    limit = int(settings.TMC_IMPORT_MAX_BYTES)
    if len(data) > limit:
        raise ImportFileError(
            f"The file is {len(data) / 1e6:.1f} MB; the most one import takes is "
            f"{limit / 1e6:.0f} MB. Split it into smaller files."
        )
    text = _decode(data, encoding)
    headers, total = _headers(text)

    job = ImportJob(
        organisation=user.organisation,
        created_by=user,
        file_name=file_name[-200:],
        headers=headers,
        mapping=mapping_guess(headers),
        region=user.organisation.default_region,
        total_rows=total,
    )
    job.file_sealed = encryption.encrypt(
        user.organisation_id, text, context=_file_context(job)
    )
    job.save()
    logger.info(
        "contact import prepared id=%s organisation_id=%s rows=%s",
        job.pk,
        job.organisation_id,
        total,
    )
    return job


# --- 2. the columns ------------------------------------------------------------


def mapping_check(headers: list[str], mapping: dict[str, Any]) -> dict[str, str]:
    """Field errors for a mapping of columns (empty when it will do)."""
    errors: dict[str, str] = {}
    if not mapping.get("number"):
        errors["number"] = "Choose the column that holds the mobile numbers."
    used: dict[str, str] = {}
    columns = [(name, mapping.get(name) or "") for name in STANDARD_FIELDS]
    columns += [(key, column) for key, column in mapping.get("fields", {}).items()]
    for target, column in columns:
        if not column:
            continue
        if column not in headers:
            errors[target if target in STANDARD_FIELDS else "fields"] = (
                f"The file has no column {column!r}."
            )
        elif column in used:
            errors[target if target in STANDARD_FIELDS else "fields"] = (
                f"{column!r} is already used for {used[column]}."
            )
        used[column] = target
    for key in mapping.get("fields", {}):
        problem = field_key_check(key)
        if problem:
            errors["fields"] = problem
    return errors


def import_map(
    *,
    user: User,
    job: ImportJob,
    mapping: dict[str, Any],
    group: Group | None = None,
    enqueue: bool = True,
) -> ImportJob:
    """Fix the columns and the group, and queue the import for the worker."""
    assert job.organisation_id == user.organisation_id
    if job.status != ImportJob.Status.MAPPING:
        raise ValidationError("This import has started already.")
    errors = mapping_check(job.headers, mapping)
    if errors:
        raise ValidationError(errors)
    if group is not None and group.organisation_id != user.organisation_id:
        raise ValidationError({"group": "Choose a group of this organisation."})

    job.mapping = mapping
    job.group = group
    job.status = ImportJob.Status.QUEUED
    job.save(update_fields=["mapping", "group", "status", "updated_at"])
    if enqueue:
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from tmc.contacts.tasks import contacts_import_task

    contacts_import_task(job_id)


# --- 3. the rows ---------------------------------------------------------------


@dataclass
class _Counts:
    created: int = 0
    merged: int = 0
    invalid: int = 0
    opted_out: int = 0
    problems: list[list[Any]] = field(default_factory=list)


def _columns(job: ImportJob) -> Columns:
    """Where the job's mapping finds each value in the file's rows."""
    position = {name: i for i, name in enumerate(job.headers)}
    padding = len(job.headers)
    mapping = job.mapping

    def column(name: str) -> int:
        header = mapping.get(name)
        return position[header] if header else padding

    return Columns(
        width=padding + 1,
        number=column("number"),
        name=column("name"),
        first_name=column("first_name"),
        last_name=column("last_name"),
        email=column("email"),
        fields=tuple(
            (key, position[header]) for key, header in mapping.get("fields", {}).items()
        ),
        region=job.region,
    )


def _batches(
    rows: Iterator[tuple[int, list[str]]], size: int
) -> Iterator[list[tuple[int, list[str]]]]:
    while batch := list(islice(rows, size)):
        yield batch


def _prepared(
    job: ImportJob, rows: Iterator[tuple[int, list[str]]], batch_rows: int
) -> Iterator[tuple[int, list[Row | Problem]]]:
    """Each batch's size and its rows read, indexed and sealed.

    A large file's batches are prepared by worker processes, a few batches
    ahead of the one being written, so that the CPU work of the next batches
    overlaps the writing of this one. They are spawned, not forked: the
    worker that runs an import has threads, which a fork would copy mid-step.
    The keys are looked up for each batch, so a rotation is taken up within
    a few batches; a key is only retired once no row uses it.
    """
    columns = _columns(job)
    owner = job.organisation_id
    processes = int(settings.TMC_IMPORT_PROCESSES)
    if processes < 1 or job.total_rows - job.next_row < POOL_FROM_ROWS:
        preparer = Preparer(columns, Contact.TABLE)
        for batch in _batches(rows, batch_rows):
            yield len(batch), preparer.prepare(encryption.sealing_keys(owner), batch)
        return

    with ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=worker_start,
        initargs=(columns, Contact.TABLE),
    ) as pool:
        ahead: deque[tuple[int, Future[list[Row | Problem]]]] = deque()
        for batch in _batches(rows, batch_rows):
            keys = encryption.sealing_keys(owner)
            ahead.append((len(batch), pool.submit(worker_prepare, keys, batch)))
            # Bounded, so memory does not grow with the file.
            if len(ahead) > 2 * processes:
                size, future = ahead.popleft()
                yield size, future.result()
        while ahead:
            size, future = ahead.popleft()
            yield size, future.result()


def import_run(
    *, job_id: int, progress: Progress | None = None, batch_rows: int = BATCH_ROWS
) -> ImportJob:
    """Import a queued job's rows, or resume one that was cut short."""
    claimed = ImportJob.objects.filter(
        pk=job_id, status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING]
    ).update(status=ImportJob.Status.RUNNING, updated_at=timezone.now())
    job = ImportJob.objects.select_related("organisation", "created_by").get(pk=job_id)
    if not claimed:
        logger.info("contact import not queued, skipped id=%s", job_id)
        return job

    text = encryption.decrypt(
        job.organisation_id, job.file_sealed, context=_file_context(job)
    )
    rows = _reader(text)
    next(rows)  # the header
    for _ in range(job.next_row):
        next(rows)

    for size, prepared in _prepared(job, rows, batch_rows):
        if not _batch_commit(job, prepared, size):
            return job
        if progress:
            progress(job)

    return _finish(job, progress)


def _finish(job: ImportJob, progress: Progress | None) -> ImportJob:
    with transaction.atomic():
        job.status = ImportJob.Status.DONE
        job.finished_at = timezone.now()
        job.file_sealed = ""
        job.save(update_fields=["status", "finished_at", "file_sealed", "updated_at"])
        event_record(
            action="contacts.imported",
            actor=job.created_by,
            target=job,
            details={
                "rows": job.total_rows,
                "created": job.created_count,
                "merged": job.merged_count,
                "invalid": job.invalid_count,
                "opted_out": job.opted_out_count,
                "group": job.group_id,
            },
        )
    logger.info(
        "contact import done id=%s organisation_id=%s created=%s merged=%s invalid=%s",
        job.pk,
        job.organisation_id,
        job.created_count,
        job.merged_count,
        job.invalid_count,
    )
    if progress:
        progress(job)
    return job


def _batch_commit(job: ImportJob, prepared: list[Row | Problem], size: int) -> bool:
    """Write one batch of ``size`` rows of the file and advance the job,
    together; False if another worker advanced it first (this batch is then
    rolled back)."""
    counts = _Counts()
    rows: dict[str, Row] = {}
    owner = job.organisation_id
    for row in prepared:
        if isinstance(row, Problem):
            counts.invalid += 1
            counts.problems.append([row.line, row.reason])
            continue
        first = rows.get(row.number_index)
        if first is None:
            rows[row.number_index] = row
        else:
            rows[row.number_index] = first.merged_with(row)
            counts.merged += 1

    with transaction.atomic():
        _contacts_upsert(job, rows, counts)
        counts.opted_out = len(_by_index(OptOut, ("number_index",), owner, rows))
        room = max(0, MAX_PROBLEMS - len(job.problems))
        advanced = ImportJob.objects.filter(pk=job.pk, next_row=job.next_row).update(
            next_row=job.next_row + size,
            created_count=job.created_count + counts.created,
            merged_count=job.merged_count + counts.merged,
            invalid_count=job.invalid_count + counts.invalid,
            opted_out_count=job.opted_out_count + counts.opted_out,
            problems=job.problems + counts.problems[:room],
            updated_at=timezone.now(),
        )
        if not advanced:
            transaction.set_rollback(True)
            logger.warning("contact import advanced elsewhere id=%s", job.pk)
            return False
    job.refresh_from_db()
    return True


def _by_index(
    model: type[Contact | OptOut],
    columns: tuple[str, ...],
    owner: int,
    indexes: Collection[str],
) -> list[tuple[Any, ...]]:
    """The rows of the organisation's contacts or opt-outs with these blind
    indexes, in one query.

    In SQL rather than the ORM, whose ``__in`` costs several microseconds a
    value: as much, at a batch of 1,000, as writing the batch.
    """
    if not indexes:
        return []
    quote = connection.ops.quote_name
    # Names come from the models, values are parameters.
    select = (
        f"SELECT {', '.join(quote(c) for c in columns)} "  # noqa: S608  # nosec B608
        f"FROM {quote(model._meta.db_table)} "
        f"WHERE {quote('organisation_id')} = %s "
        f"AND {quote('number_index')} IN ({', '.join(['%s'] * len(indexes))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(select, [owner, *indexes])
        found: list[tuple[Any, ...]] = cursor.fetchall()
    return found


def _contacts_upsert(job: ImportJob, rows: dict[str, Row], counts: _Counts) -> None:
    owner = job.organisation_id
    now = timezone.now()
    uid_field = Contact._meta.get_field("uid")
    existing = {
        index: (pk, uid_field.to_python(uid), sealed)
        for pk, index, uid, sealed in _by_index(
            Contact, ("id", "number_index", "uid", "details_sealed"), owner, rows
        )
    }

    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    sealer = encryption.BulkSealer(owner)
    native_uuid = connection.features.has_native_uuid_field
    when = Contact._meta.get_field("updated_at").get_db_prep_value(
        now, connection, prepared=False
    )
    for index, row in rows.items():
        if index in existing:
            pk, uid, sealed = existing[index]
            context = Contact.context_for(uid, "details")
            stored = encryption.decrypt(owner, sealed, context=context)
            before = json.loads(stored)
            merged = row._replace(
                name=before.get("name", ""),
                email=before.get("email", ""),
                fields=dict(before.get("fields", {})),
            ).merged_with(row)
            details = merged.details()
            if details != stored:
                updates.append((sealer.encrypt(details, context=context), when, pk))
            counts.merged += 1
            continue
        details_sealed = row.details_sealed or sealer.encrypt(
            row.details(), context=Contact.context_for(row.uid, "details")
        )
        inserts.append(
            (
                owner,
                row.uid if native_uuid else row.uid.replace("-", ""),
                row.number_sealed,
                index,
                details_sealed,
                when,
                when,
            )
        )
    counts.created += len(inserts)

    columns = ("organisation_id", "uid", "number_sealed", "number_index",
               "details_sealed", "created_at", "updated_at")  # fmt: skip
    rows_insert(Contact._meta.db_table, columns, inserts)
    if updates:
        quote = connection.ops.quote_name
        # Names come from the model, values are parameters.
        update = (
            f"UPDATE {quote(Contact._meta.db_table)} "  # noqa: S608  # nosec B608
            f"SET {quote('details_sealed')} = %s, {quote('updated_at')} = %s "
            f"WHERE {quote('id')} = %s"
        )
        with connection.cursor() as cursor:
            cursor.executemany(update, updates)

    if job.group_id is not None:
        members = Contact.groups.through
        ids = Contact.objects.filter(
            organisation_id=owner, number_index__in=list(rows)
        ).values_list("pk", flat=True)
        members.objects.bulk_create(
            [members(contact_id=pk, group_id=job.group_id) for pk in ids],
            ignore_conflicts=True,
        )
