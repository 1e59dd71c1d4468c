"""The hash that links one event to the next, without Django.

An event's hash is the SHA-256 of a canonical JSON object holding every
recorded field and the previous event's hash. Canonical means sorted keys,
no spaces, UTF-8 and times in UTC to the microsecond, so the same event
hashes the same on SQLite and PostgreSQL, whatever order a JSON column
gives its keys back in. Changing this format breaks every stored chain:
``VERSION`` is part of the hashed object so that a future format can be
told apart.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

VERSION = 1

# In this order in ``values_list`` reads (see tmc.audit.services).
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


def event_hash(fields: Mapping[str, Any]) -> str:
    """The hash of one event, given its ``HASHED_FIELDS``."""
    payload = {name: fields[name] for name in HASHED_FIELDS}
    payload["created_at"] = canonical_time(fields["created_at"])
    payload["v"] = VERSION
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
