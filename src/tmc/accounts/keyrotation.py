"""Key rotation: a new master key, or a new data key for one organisation.

Rotating the master key re-wraps the keys it protects and takes seconds.
Rotating an organisation's data key makes a new key current, then
re-encrypts every sealed value of the organisation under it, a batch of rows
per transaction, while the application keeps serving: old keys still open
the rows not yet done. Each value names its key, so a run cut short is
resumed by running again. When no row uses an old key any more, the old key
is destroyed. The blind-index key is not rotated: the indexes of every row
would change at once, and lookups with them.

Every model with a sealed column declares it with ``sealed_column_register``
(in its app's ``AppConfig.ready``), so that a rotation reaches it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from tmc.accounts import encryption
from tmc.accounts.models import DataKey, Organisation
from tmc.audit.services import event_record
from tmc.lib.crypto import DecryptionError

logger = logging.getLogger(__name__)

BATCH_ROWS = 500
SYSTEM = "system:command line"


# --- the sealed columns ----------------------------------------------------------


@dataclass(frozen=True)
class SealedColumn:
    """A column holding values sealed with the organisation's data key.

    ``context`` gives, for a row, the context the value is bound to: the
    same one the model seals and opens it with.
    """

    model: type[models.Model]
    field: str
    context: Callable[[Any], str]


_columns: list[SealedColumn] = []


def sealed_column_register(
    model: type[models.Model], field: str, *, context: Callable[[Any], str]
) -> None:
    """Declare a sealed column of ``model``; its rows must have ``organisation``."""
    model._meta.get_field(field)
    model._meta.get_field("organisation")
    if not any(c.model is model and c.field == field for c in _columns):
        _columns.append(SealedColumn(model, field, context))


def sealed_columns() -> tuple[SealedColumn, ...]:
    return tuple(_columns)


def _by_model() -> dict[type[models.Model], list[SealedColumn]]:
    grouped: dict[type[models.Model], list[SealedColumn]] = {}
    for column in _columns:
        grouped.setdefault(column.model, []).append(column)
    return grouped


# --- the master key --------------------------------------------------------------


def master_key_rotate(*, actor_label: str = SYSTEM) -> tuple[str, int]:
    """``encryption.master_key_rotate``, recorded in the platform's activity log.

    Returns the new master key's fingerprint and how many keys were
    re-wrapped.
    """
    new_id, count = encryption.master_key_rotate()
    event_record(
        action="key.master_rotated",
        actor_label=actor_label,
        details={"master_key": new_id, "keys_rewrapped": count},
    )
    return new_id, count


# --- an organisation's data key ----------------------------------------------------

Progress = Callable[[int, int], None]


@dataclass
class KeyRotation:
    """What one run of a data key rotation did."""

    organisation_id: int
    key_id: str
    old_key_ids: list[str]
    resumed: bool
    to_do: int = 0  # rows under an old key when the run started
    seen: int = 0  # rows this run looked at (for progress)
    rows: int = 0  # rows re-encrypted by this run
    values: int = 0  # sealed values re-encrypted by this run
    changed: int = 0  # rows the application wrote meanwhile, left to it
    remaining: int = 0  # rows still under an old key when the run ended
    retired: list[str] = field(default_factory=list)
    # Values that did not open, left as they are: (table, row, column).
    unreadable_values: set[tuple[str, int, str]] = field(default_factory=set)

    @property
    def unreadable(self) -> int:
        return len(self.unreadable_values)

    @property
    def finished(self) -> bool:
        return self.remaining == 0 and len(self.retired) == len(self.old_key_ids)


def organisation_key_rotate(
    *,
    organisation: Organisation,
    batch_rows: int = BATCH_ROWS,
    max_batches: int | None = None,
    settle_seconds: float | None = None,
    progress: Progress | None = None,
    waiting: Callable[[float], None] | None = None,
    actor_label: str = SYSTEM,
) -> KeyRotation:
    """Make a new data key current and re-encrypt the organisation's data.

    A rerun continues an unfinished rotation with the same new key. With
    ``max_batches`` the run stops after that many batches. Old keys are
    destroyed once no row uses them, but not before ``settle_seconds``
    (twice the key cache's lifetime by default) have passed since the new
    key became current; ``waiting`` is told how long the run waits. Raises
    ``encryption.KeyUnavailable`` if the organisation's keys were erased.
    """
    if settle_seconds is None:
        settle_seconds = 2 * encryption.CACHE_SECONDS
    key, old_keys, resumed = _rotation_start(organisation)
    rotation = KeyRotation(
        organisation_id=organisation.pk,
        key_id=key.key_id,
        old_key_ids=[k.key_id for k in old_keys],
        resumed=resumed,
    )
    logger.info(
        "data key rotation %s organisation_id=%s key_id=%s old_keys=%s",
        "resumed" if resumed else "started",
        organisation.pk,
        key.key_id,
        len(old_keys),
    )

    rotation.to_do = _rows_under_old_keys(rotation)
    stopped_early = not organisation_rows_reencrypt(
        rotation=rotation,
        batch_rows=batch_rows,
        max_batches=max_batches,
        progress=progress,
    )
    if not stopped_early and old_keys:
        # Another process may still hold the old key as current in its key
        # cache, for up to CACHE_SECONDS after the new key was made current,
        # and write a value under it behind this pass. Once that time is over
        # (with a margin for a write already under way), a second pass picks
        # up those rows, and only then can the old keys go.
        settled_at = key.created_at.timestamp() + settle_seconds
        pause = settled_at - timezone.now().timestamp()
        if pause > 0:
            if waiting:
                waiting(pause)
            time.sleep(pause)
        organisation_rows_reencrypt(
            rotation=rotation, batch_rows=batch_rows, progress=progress
        )

    with transaction.atomic():
        rotation.remaining = _rows_under_old_keys(rotation)
        if not stopped_early and rotation.remaining == 0:
            rotation.retired = _old_keys_destroy(old_keys)
        event_record(
            action="key.data_rotated",
            organisation=organisation,
            actor_label=actor_label,
            target=key,
            details={
                "resumed": resumed,
                "rows": rotation.rows,
                "values": rotation.values,
                "changed_meanwhile": rotation.changed,
                "unreadable": rotation.unreadable,
                "remaining": rotation.remaining,
                "keys_retired": len(rotation.retired),
                "finished": rotation.finished,
            },
        )
    logger.info(
        "data key rotation %s organisation_id=%s key_id=%s rows=%s values=%s "
        "unreadable=%s remaining=%s retired=%s",
        "finished" if rotation.finished else "stopped",
        organisation.pk,
        key.key_id,
        rotation.rows,
        rotation.values,
        rotation.unreadable,
        rotation.remaining,
        len(rotation.retired),
    )
    return rotation


def _rotation_start(organisation: Organisation) -> tuple[DataKey, list[DataKey], bool]:
    """The new current key, the keys it replaces, and whether it is a rerun."""
    with transaction.atomic():
        # The lock that encryption takes to make a first key, so that the app
        # cannot create a key of its own beside this one.
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        if encryption.organisation_erased(organisation.pk):
            raise encryption.KeyUnavailable(
                "this organisation's keys have been destroyed"
            )
        kept = list(
            DataKey.objects.filter(
                organisation=organisation,
                purpose=DataKey.Purpose.DATA,
                destroyed_at__isnull=True,
            ).order_by("-created_at", "-id")
        )
        live = [k for k in kept if k.retired_at is None]
        resumed = bool(live) and any(k.retired_at is not None for k in kept)
        key = live[0] if resumed else encryption.data_key_create(organisation)
        old_keys = [k for k in kept if k.pk != key.pk]
        # Retired: no longer current for sealing, still there to open.
        DataKey.objects.filter(
            pk__in=[k.pk for k in old_keys], retired_at__isnull=True
        ).update(retired_at=timezone.now())
    return key, old_keys, resumed


def _under(columns: list[SealedColumn], key_ids: list[str]) -> Q:
    """Rows with a value in any of ``columns`` sealed by any of ``key_ids``."""
    found = Q(pk__in=[])
    for column in columns:
        for key_id in key_ids:
            found |= Q(**{f"{column.field}__startswith": f"{key_id}:"})
    return found


def _rows_under_old_keys(rotation: KeyRotation) -> int:
    if not rotation.old_key_ids:
        return 0
    return sum(
        model._default_manager.filter(
            _under(columns, rotation.old_key_ids),
            organisation_id=rotation.organisation_id,
        ).count()
        for model, columns in _by_model().items()
    )


def organisation_rows_reencrypt(
    *,
    rotation: KeyRotation,
    batch_rows: int = BATCH_ROWS,
    max_batches: int | None = None,
    progress: Progress | None = None,
) -> bool:
    """One pass over the rows still under an old key; False if cut short.

    Counts go into ``rotation``; a value that does not open (moved or
    altered) is counted as unreadable and left as it is.
    """
    if not rotation.old_key_ids:
        return True
    batches = 0
    for model, columns in _by_model().items():
        after = 0
        while True:
            if max_batches is not None and batches >= max_batches:
                return False
            last = _batch_reencrypt(model, columns, rotation, after, batch_rows)
            if last is None:
                break
            after = last
            batches += 1
            if progress:
                progress(rotation.seen, max(rotation.to_do, rotation.seen))
    return True


def _batch_reencrypt(
    model: type[models.Model],
    columns: list[SealedColumn],
    rotation: KeyRotation,
    after: int,
    batch_rows: int,
) -> int | None:
    """Re-encrypt the next batch of rows after pk ``after``.

    Returns the last pk of the batch, or None when there are no more rows.
    """
    owner = rotation.organisation_id
    old = set(rotation.old_key_ids)
    with transaction.atomic():
        rows = list(
            model._default_manager.filter(
                _under(columns, rotation.old_key_ids),
                organisation_id=owner,
                pk__gt=after,
            ).order_by("pk")[:batch_rows]
        )
        # Rows grouped by which of their columns need the new key.
        updates: dict[tuple[str, ...], list[list[Any]]] = {}
        for row in rows:
            names: list[str] = []
            resealed: list[str] = []
            read: list[str] = []
            for column in columns:
                token = getattr(row, column.field)
                if encryption.key_id_of(token) not in old:
                    continue
                try:
                    resealed.append(
                        encryption.reencrypt(
                            owner,
                            token,
                            context=column.context(row),
                            key_id=rotation.key_id,
                        )
                    )
                except DecryptionError:
                    _unreadable(rotation, model, row.pk, column.field)
                    continue
                names.append(column.field)
                read.append(token)
            if names:
                updates.setdefault(tuple(names), []).append([*resealed, row.pk, *read])
        for fields, parameters in updates.items():
            updated = _conditional_update(model, fields, parameters)
            rotation.rows += updated
            rotation.values += updated * len(fields)
            rotation.changed += len(parameters) - updated
    if not rows:
        return None
    rotation.seen += len(rows)
    pk: int = rows[-1].pk
    return pk


def _conditional_update(
    model: type[models.Model], fields: tuple[str, ...], parameters: list[list[Any]]
) -> int:
    """Write re-encrypted values where the row still holds what was read.

    Each parameter row is the new values, the pk, then the values read. If
    the application wrote the row since it was read (a contact edited while
    this batch ran), its update matches nothing instead of putting the old
    plaintext back over the new: the row is then under the new key already,
    or the next pass picks it up. One statement for the whole batch
    (``executemany``), so the batch holds its row locks briefly.
    """
    quote = connection.ops.quote_name
    columns = [_column(model._meta.get_field(name)) for name in fields]
    assignments = ", ".join(f"{quote(c)} = %s" for c in columns)
    conditions = " AND ".join(f"{quote(c)} = %s" for c in columns)
    # Names come from the model, values are parameters.
    statement = (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "  # noqa: S608  # nosec B608
        f"WHERE {quote(_column(model._meta.pk))} = %s AND {conditions}"
    )
    with connection.cursor() as cursor:
        cursor.executemany(statement, parameters)
        updated: int = cursor.rowcount
    return updated


def _column(field: object) -> str:
    assert isinstance(field, models.Field)
    assert field.column
    return field.column


def _unreadable(
    rotation: KeyRotation, model: type[models.Model], pk: int, field: str
) -> None:
    where = (model._meta.db_table, pk, field)
    if where not in rotation.unreadable_values:
        rotation.unreadable_values.add(where)
        logger.warning(
            "sealed value does not open, left as it is table=%s column=%s id=%s",
            model._meta.db_table,
            field,
            pk,
        )


def _old_keys_destroy(old_keys: list[DataKey]) -> list[str]:
    DataKey.objects.filter(
        pk__in=[k.pk for k in old_keys], destroyed_at__isnull=True
    ).update(wrapped="", destroyed_at=timezone.now())
    # This process stops using them at once; others within CACHE_SECONDS.
    encryption.cache_clear()
    return [k.key_id for k in old_keys]
