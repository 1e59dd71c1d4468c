"""The per-row work of a contact import, fit to run in other processes.

Reading a row (normalising its number, checking its email and lengths),
its blind index and its two AES-GCM seals are nearly all of an import's
time, and pure CPU. ``rows_prepare`` does that for one batch, with nothing
but the column positions and the keys it is given, so that a large import can
spread its batches over worker processes (``tmc.contacts.importing``). This
module imports no models and needs no settings: a spawned worker starts in a
fraction of a second.

Each row is sealed as a new contact with a fresh uid. The importing process
re-seals the few that turn out to merge with a contact already in the book,
or with an earlier row of the file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from tmc.lib.crypto import BlindIndexer, Sealer, SealingKeys
from tmc.lib.phone import InvalidNumber, normalise_mobile

# Limits on a contact's details, also checked by contact_create.
NAME_MAX = 150
FIELD_VALUE_MAX = 200

# One encoder for all: json.dumps with options builds a new one each call.
_details_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def details_encode(*, name: str, email: str, fields: dict[str, str]) -> str:
    """A contact's details as the one JSON value that is sealed."""
    return _details_json({"name": name, "email": email, "fields": fields})


@dataclass(frozen=True)
class Columns:
    """Where each of a contact's values is in a file's rows.

    A column that is not mapped points one past the file's last column,
    at the empty cell that rows are padded with.
    """

    width: int
    number: int
    name: int
    first_name: int
    last_name: int
    email: int
    fields: tuple[tuple[str, int], ...]
    region: str


class Row(NamedTuple):
    """A checked row of the file, sealed as a new contact would be.

    A tuple, so that sending batches between processes stays cheap.
    ``details_sealed`` is empty once the details have changed by a merge.
    """

    line: int
    number: str
    name: str
    email: str
    fields: dict[str, str]
    number_index: str
    uid: str
    number_sealed: str
    details_sealed: str

    def merged_with(self, other: Row) -> Row:
        """A later mention of the same number fills in and overrides."""
        return self._replace(
            name=other.name or self.name,
            email=other.email or self.email,
            fields={**self.fields, **{k: v for k, v in other.fields.items() if v}},
            details_sealed="",
        )

    def details(self) -> str:
        return details_encode(name=self.name, email=self.email, fields=self.fields)


class Problem(NamedTuple):
    """A row that is skipped, and why (never its values)."""

    line: int
    reason: str


class _EmailCheck(EmailValidator):
    """Django's email check, remembering which domains it has accepted.

    A file's addresses share a few domains, and the domain's pattern is the
    costlier half of the check.
    """

    def __init__(self) -> None:
        super().__init__()
        self._domains: dict[str, bool] = {}

    def validate_domain_part(self, domain_part: str) -> bool:
        known = self._domains.get(domain_part)
        if known is None:
            known = bool(super().validate_domain_part(domain_part))
            if len(self._domains) < 10_000:
                self._domains[domain_part] = known
        return known


class _Reader:
    """Turns a row's cells into its number and details, checked."""

    def __init__(self, columns: Columns) -> None:
        self.columns = columns
        self._email_check = _EmailCheck()

    def read(self, cells: list[str]) -> tuple[str, str, str, dict[str, str]]:
        """Number, name, email and fields, or ValueError with the reason."""
        columns = self.columns
        if len(cells) < columns.width:
            cells = cells + [""] * (columns.width - len(cells))

        try:
            number = normalise_mobile(cells[columns.number].strip(), columns.region)
        except InvalidNumber as exc:
            raise ValueError(exc.reason) from exc
        name = cells[columns.name].strip() or " ".join(
            part
            for part in (
                cells[columns.first_name].strip(),
                cells[columns.last_name].strip(),
            )
            if part
        )
        if len(name) > NAME_MAX:
            raise ValueError(f"The name is longer than {NAME_MAX} characters.")
        email = cells[columns.email].strip()
        if email:
            try:
                self._email_check(email)
            except ValidationError as exc:
                raise ValueError("Not a valid email address.") from exc
        fields = {}
        for key, index in columns.fields:
            value = cells[index].strip()
            if len(value) > FIELD_VALUE_MAX:
                raise ValueError(f"{key} is longer than {FIELD_VALUE_MAX} characters.")
            if value:
                fields[key] = value
        return number, name, email, fields


class Preparer:
    """Reads, indexes and seals batches of rows of one file."""

    def __init__(self, columns: Columns, table: str) -> None:
        self._reader = _Reader(columns)
        self._number_context = f"{table}.number|"
        self._details_context = f"{table}.details|"

    def prepare(
        self, keys: SealingKeys, batch: list[tuple[int, list[str]]]
    ) -> list[Row | Problem]:
        index = BlindIndexer(keys.index_key).index
        seal = Sealer(keys.data_key, prefix=keys.token_prefix).seal
        owner = keys.associated_prefix
        number_context = owner + self._number_context
        details_context = owner + self._details_context
        prepared: list[Row | Problem] = []
        for line, cells in batch:
            try:
                number, name, email, fields = self._reader.read(cells)
            except ValueError as exc:
                prepared.append(Problem(line, str(exc)))
                continue
            uid = str(uuid.uuid4())
            details = details_encode(name=name, email=email, fields=fields)
            prepared.append(
                Row(
                    line=line,
                    number=number,
                    name=name,
                    email=email,
                    fields=fields,
                    number_index=index(number),
                    uid=uid,
                    number_sealed=seal(number, associated=number_context + uid),
                    details_sealed=seal(details, associated=details_context + uid),
                )
            )
        return prepared


# In a worker process: the preparer of the file being imported.
_worker: Preparer | None = None


def worker_start(columns: Columns, table: str) -> None:
    """A worker process's initialiser."""
    global _worker
    _worker = Preparer(columns, table)


def worker_prepare(
    keys: SealingKeys, batch: list[tuple[int, list[str]]]
) -> list[Row | Problem]:
    assert _worker is not None, "worker_start runs first"
    return _worker.prepare(keys, batch)
