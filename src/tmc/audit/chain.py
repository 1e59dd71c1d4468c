"""The hash that links one event to the next, without Django.

An event's hash is the SHA-256 of a canonical JSON object holding every
recorded field and the previous event's hash. Canonical means sorted keys,
no spaces, UTF-8 and times in UTC to the microsecond, so the same event
hashes the same on SQLite and PostgreSQL, whatever order a JSON column
gives its keys back in. Changing this format breaks every stored chain:
``VERSION`` is part of the hashed object so that a future format can be
told apart.

Every action that is recorded pays for the hash, and verify computes one per
stored event, so the object is written out by hand in key order rather than
through ``json.dumps(..., sort_keys=True)``: each string goes through the
same escaping ``json.dumps(..., ensure_ascii=False)`` applies, so the text
is byte for byte what the general encoder would give (a test holds the two
side by side).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, NamedTuple

VERSION = 1

# In this order in raw reads (see tmc.audit.services).
HASHED_FIELDS = (
    "chain",
    "sequence",
    "created_at",
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
    "previous_hash",
)


def canonical_time(moment: datetime | str) -> str:
    """UTC to the microsecond; a string is taken as already canonical."""
    if isinstance(moment, str):
        return moment
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class HashedText(NamedTuple):
    """The canonical object of an event around its place in the chain.

    The whole object is ``before + '"' + previous_hash + '"' + between +
    str(sequence) + after``: the two values that only the chain head knows
    sit in the middle (keys are sorted), so a writer can hand the three
    known parts to the database and let it fill the link in under its lock.
    """

    before: str
    between: str
    after: str

    def text(self, previous_hash: str, sequence: int) -> str:
        link = encode_basestring(previous_hash)
        return f"{self.before}{link}{self.between}{sequence}{self.after}"


def hashed_text(
    fields: Mapping[str, Any], details_json: str | None = None
) -> HashedText:
    """The parts of an event's canonical object, given its fields.

    ``details_json`` is the canonical JSON of ``fields["details"]`` when the
    caller already has it; ``previous_hash`` and ``sequence`` are not read.
    """
    return hashed_parts(
        action=fields["action"],
        actor_kind=fields["actor_kind"],
        actor_label=fields["actor_label"],
        actor_ref=fields["actor_ref"],
        chain=fields["chain"],
        created_at=canonical_time(fields["created_at"]),
        details_json=(
            canonical_json(fields["details"]) if details_json is None else details_json
        ),
        ip_address=fields["ip_address"],
        request_id=fields["request_id"],
        target_id=fields["target_id"],
        target_type=fields["target_type"],
        user_agent=fields["user_agent"],
    )


def hashed_parts(
    *,
    action: str,
    actor_kind: str,
    actor_label: str,
    actor_ref: str,
    chain: str,
    created_at: str,
    details_json: str,
    ip_address: str | None,
    request_id: str,
    target_id: str,
    target_type: str,
    user_agent: str,
) -> HashedText:
    """``hashed_text`` from values already in their canonical form."""
    quote = encode_basestring
    address = "null" if ip_address is None else quote(ip_address)
    return HashedText(
        before=(
            f'{{"action":{quote(action)},"actor_kind":{quote(actor_kind)}'
            f',"actor_label":{quote(actor_label)},"actor_ref":{quote(actor_ref)}'
            f',"chain":{quote(chain)},"created_at":{quote(created_at)}'
            f',"details":{details_json},"ip_address":{address},"previous_hash":'
        ),
        between=f',"request_id":{quote(request_id)},"sequence":',
        after=(
            f',"target_id":{quote(target_id)},"target_type":{quote(target_type)}'
            f',"user_agent":{quote(user_agent)},"v":{VERSION}}}'
        ),
    )


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_hash(fields: Mapping[str, Any], details_json: str | None = None) -> str:
    """The hash of one event, given its ``HASHED_FIELDS``."""
    parts = hashed_text(fields, details_json)
    return text_hash(parts.text(fields["previous_hash"], fields["sequence"]))
