"""Envelope encryption of each organisation's confidential data.

Each organisation has its own data keys and an index key, stored wrapped by
the master key (which lives in TMC_HOME, never in the database). Values are
sealed with AES-256-GCM under the organisation's current data key, tagged
with that key's id, and bound by associated data to the organisation and to
the table, column and row they belong to: a ciphertext copied elsewhere fails
to open. Lookups on secret values (a mobile number) use a keyed blind index.

Unwrapped keys are cached in the process for a short while, so a destroyed
key stops working everywhere within that time.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from tmc.accounts.models import DataKey, Organisation
from tmc.lib import keys
from tmc.lib.crypto import (
    BlindIndexer,
    DecryptionError,
    Sealer,
    SealingKeys,
    blind_index,
    fingerprint,
    seal,
    seal_bytes,
    unseal,
    unseal_bytes,
)

logger = logging.getLogger(__name__)

CACHE_SECONDS = 30.0
KEY_BYTES = 32


class KeyUnavailable(DecryptionError):
    """The key a value was sealed with is destroyed or unknown."""


@dataclass(frozen=True)
class _Key:
    key_id: str
    owner: int | None
    secret: bytes
    loaded_at: float


_lock = threading.Lock()
_by_id: dict[str, _Key] = {}
_current: dict[tuple[int, str], _Key] = {}
# Keys created in a transaction not yet committed (or rolled back): the only
# rows a transaction can see that might never exist for anyone else.
_uncommitted: set[str] = set()


def cache_clear() -> None:
    with _lock:
        _by_id.clear()
        _current.clear()


Owner = int | None  # an organisation's id, or None for the platform's keys


def _wrap_context(organisation_id: Owner, key_id: str, purpose: str) -> str:
    return f"datakey|{organisation_id or 'platform'}|{key_id}|{purpose}"


def _fresh(entry: _Key | None) -> bool:
    return entry is not None and time.monotonic() - entry.loaded_at < CACHE_SECONDS


def _unwrap(row: DataKey) -> _Key:
    if row.destroyed_at is not None or not row.wrapped:
        raise KeyUnavailable(f"key {row.key_id} has been destroyed")
    masters = keys.master_keys(settings.TMC_HOME)
    master = masters.get(row.master_key_id)
    if master is None:
        raise KeyUnavailable(f"master key {row.master_key_id} is not available")
    secret = unseal_bytes(
        master,
        row.wrapped,
        associated=_wrap_context(row.organisation_id, row.key_id, row.purpose),
    )
    return _Key(row.key_id, row.organisation_id, secret, time.monotonic())


def data_key_create(
    organisation: Organisation | Owner, purpose: str = DataKey.Purpose.DATA
) -> DataKey:
    """Generate a key for the organisation, wrapped by the current master key."""
    organisation_id = (
        organisation.pk if isinstance(organisation, Organisation) else organisation
    )
    master = keys.read_master_key(settings.TMC_HOME)
    key_id = secrets.token_hex(8)
    secret = secrets.token_bytes(KEY_BYTES)
    with _lock:
        _uncommitted.add(key_id)
    transaction.on_commit(partial(_committed, key_id))
    return DataKey.objects.create(
        organisation_id=organisation_id,
        key_id=key_id,
        purpose=purpose,
        master_key_id=fingerprint(master),
        wrapped=seal_bytes(
            master,
            secret,
            associated=_wrap_context(organisation_id, key_id, purpose),
        ),
    )


def _owned_by(organisation_id: Owner) -> dict[str, object]:
    if organisation_id is None:
        return {"organisation__isnull": True}
    return {"organisation_id": organisation_id}


def _live(organisation_id: Owner, purpose: str) -> DataKey | None:
    return (
        DataKey.objects.filter(
            **_owned_by(organisation_id),
            purpose=purpose,
            retired_at__isnull=True,
            destroyed_at__isnull=True,
        )
        .order_by("-created_at", "-id")
        .first()
    )


def _current_key(organisation_id: Owner, purpose: str) -> _Key:
    cached = _current.get((organisation_id or 0, purpose))
    if _fresh(cached):
        assert cached is not None
        return cached
    row = _live(organisation_id, purpose)
    if row is None:
        if organisation_erased(organisation_id):
            raise KeyUnavailable("this organisation's keys have been destroyed")
        # Keys are made on first use. Locking the organisation's row makes
        # two processes doing so at once create one key, not two; the
        # platform has no row to lock, so for its index key the unique rule
        # decides, and the loser reads the winner's key.
        try:
            with transaction.atomic():
                if organisation_id is not None:
                    Organisation.objects.select_for_update().filter(
                        pk=organisation_id
                    ).first()
                row = _live(organisation_id, purpose) or data_key_create(
                    organisation_id, purpose
                )
        except IntegrityError:
            row = _live(organisation_id, purpose)
            if row is None:
                raise
    entry = _unwrap(row)
    _remember_after_commit((organisation_id or 0, purpose), entry)
    return entry


def organisation_erased(organisation_id: Owner) -> bool:
    """Whether the owner's keys were destroyed on request.

    A key destroyed at the end of a rotation was retired first, so it does
    not count: only a destroyed key that was still current means erasure.
    """
    return DataKey.objects.filter(
        **_owned_by(organisation_id),
        retired_at__isnull=True,
        destroyed_at__isnull=False,
    ).exists()


def _committed(key_id: str) -> None:
    with _lock:
        _uncommitted.discard(key_id)


def _remember_after_commit(current: tuple[int, str] | None, entry: _Key) -> None:
    """Cache a key only once its row is surely committed.

    A key created inside a transaction that then rolls back must not outlive
    it in the cache: its id could be handed out again, and data sealed with
    the cached key would have no stored key to open it. Any other row a
    transaction reads was committed by someone else, so it is cached at once
    (a batch inside one transaction then reads each key once, not once per
    value).
    """

    def remember() -> None:
        with _lock:
            if current is not None:
                _current[current] = entry
            _by_id[entry.key_id] = entry

    with _lock:
        created_here = entry.key_id in _uncommitted
    if created_here:
        transaction.on_commit(remember)
    else:
        remember()


def _key_by_id(key_id: str) -> _Key:
    cached = _by_id.get(key_id)
    if _fresh(cached):
        assert cached is not None
        return cached
    row = DataKey.objects.filter(key_id=key_id).first()
    if row is None:
        raise KeyUnavailable(f"unknown key {key_id}")
    entry = _unwrap(row)
    _remember_after_commit(None, entry)
    return entry


def _associated(organisation_id: Owner, context: str) -> str:
    return f"{organisation_id or 'platform'}|{context}"


def field_context(table: str, column: str, row: object) -> str:
    """What a value is bound to: its table, column and row."""
    return f"{table}.{column}|{row}"


def encrypt(organisation_id: Owner, plaintext: str, *, context: str) -> str:
    key = _current_key(organisation_id, DataKey.Purpose.DATA)
    sealed = seal(
        key.secret, plaintext, associated=_associated(organisation_id, context)
    )
    return f"{key.key_id}:{sealed}"


def decrypt(organisation_id: Owner, token: str, *, context: str) -> str:
    key_id, _, sealed = token.partition(":")
    key = _key_by_id(key_id)
    return unseal(key.secret, sealed, associated=_associated(organisation_id, context))


def key_id_of(token: str) -> str:
    return token.partition(":")[0]


def reencrypt(organisation_id: Owner, token: str, *, context: str, key_id: str) -> str:
    """Open a value with the key that sealed it and seal it under ``key_id``.

    For a key rotation: the plaintext never leaves this module. Raises
    ``DecryptionError`` if the value does not open in this context.
    """
    key = _key_by_id(key_id)
    if key.owner != organisation_id:
        raise ValueError(f"key {key_id} does not belong to this owner")
    plaintext = decrypt(organisation_id, token, context=context)
    sealed = seal(
        key.secret, plaintext, associated=_associated(organisation_id, context)
    )
    return f"{key.key_id}:{sealed}"


def index(organisation_id: Owner, value: str) -> str:
    key = _current_key(organisation_id, DataKey.Purpose.INDEX)
    return blind_index(key.secret, value)


def sealing_keys(organisation_id: Owner) -> SealingKeys:
    """The owner's current keys, for sealing and indexing values in bulk
    (in another process, say) exactly as ``encrypt`` and ``index`` do."""
    data = _current_key(organisation_id, DataKey.Purpose.DATA)
    return SealingKeys(
        token_prefix=f"{data.key_id}:",
        associated_prefix=_associated(organisation_id, ""),
        data_key=data.secret,
        index_key=_current_key(organisation_id, DataKey.Purpose.INDEX).secret,
    )


class BulkSealer:
    """``encrypt`` for many values of one owner, with the key looked up once.

    Tokens are the same as ``encrypt``'s. Make one for a batch, not for a
    whole long job, so that a key rotation meanwhile is taken up at the next
    batch.
    """

    def __init__(self, organisation_id: Owner) -> None:
        key = _current_key(organisation_id, DataKey.Purpose.DATA)
        self._sealer = Sealer(key.secret, prefix=f"{key.key_id}:")
        self._owner = _associated(organisation_id, "")

    def encrypt(self, plaintext: str, *, context: str) -> str:
        return self._sealer.seal(plaintext, associated=self._owner + context)


def bulk_indexer(organisation_id: Owner) -> BlindIndexer:
    """``index`` for many values of one owner: ``.index(value)``."""
    return BlindIndexer(_current_key(organisation_id, DataKey.Purpose.INDEX).secret)


def organisation_keys_destroy(organisation: Organisation) -> int:
    """Erase on request: make every confidential value unreadable, at once."""
    destroyed = DataKey.objects.filter(
        organisation=organisation, destroyed_at__isnull=True
    ).update(wrapped="", destroyed_at=timezone.now())
    cache_clear()
    logger.warning(
        "organisation keys destroyed organisation_id=%s count=%s",
        organisation.pk,
        destroyed,
    )
    return destroyed


_master_sealed: list[Callable[[], int]] = []


def master_sealed_register(reseal: Callable[[], int]) -> None:
    """Declare values sealed under the master key itself, not a data key.

    ``reseal`` re-seals them under the current master key (opening them with
    a retired one) and returns how many it changed. ``master_key_rotate``
    calls it before removing the retired master keys, which would otherwise
    take those values with them. Apps register in ``AppConfig.ready``.
    """
    if reseal not in _master_sealed:
        _master_sealed.append(reseal)


def master_sealed_reseal(
    rows: QuerySet[Any], *, field: str, purpose: str, owner: Callable[[Any], str]
) -> int:
    """Re-seal ``field`` of ``rows`` (``keys.master_seal`` values) under the
    current master key; return how many changed.

    Each update is conditional on the value read, so a row written again
    meanwhile keeps its new value rather than this re-sealed old one.
    """
    home = settings.TMC_HOME
    resealed = 0
    for row in rows.exclude(**{field: ""}):
        token = getattr(row, field)
        value, current = keys.master_open(home, purpose, token, owner=owner(row))
        if current:
            continue
        fresh = keys.master_seal(home, purpose, value, owner=owner(row))
        resealed += (
            type(row)
            ._default_manager.filter(pk=row.pk, **{field: token})
            .update(**{field: fresh})
        )
    return resealed


def master_key_rotate() -> tuple[str, int]:
    """Re-wrap every organisation key with a new master key.

    Only the keys are re-wrapped, never the data, so this takes seconds
    whatever the amount of data; values sealed under the master key itself
    (``master_sealed_register``) are re-sealed. Returns the new master key's
    fingerprint and the number of keys re-wrapped.
    """
    home = settings.TMC_HOME
    old_id, new_id = keys.master_key_replace(home)
    masters = keys.master_keys(home)
    new_master = masters[new_id]
    count = 0
    for row in DataKey.objects.filter(destroyed_at__isnull=True).exclude(
        master_key_id=new_id
    ):
        context = _wrap_context(row.organisation_id, row.key_id, row.purpose)
        secret = unseal_bytes(
            masters[row.master_key_id], row.wrapped, associated=context
        )
        row.wrapped = seal_bytes(new_master, secret, associated=context)
        row.master_key_id = new_id
        row.save(update_fields=["wrapped", "master_key_id"])
        count += 1
    for reseal in _master_sealed:
        reseal()
    still_used = set(
        DataKey.objects.filter(destroyed_at__isnull=True).values_list(
            "master_key_id", flat=True
        )
    )
    keys.retired_master_keys_remove(home, keep=still_used)
    cache_clear()
    logger.info(
        "master key rotated from %s to %s; %s keys re-wrapped", old_id, new_id, count
    )
    return new_id, count
