"""A token bucket per API key, kept in the cache.

With Redis (TMC_REDIS_URL) the bucket is shared by every process. On the
local-memory cache each process keeps its own buckets, so the limit is
approximate there: N web processes allow up to N times the rate.

The read-modify-write below is not atomic: two requests of one key landing
at the same instant can both take the last token. The limit is there to
stop a runaway client, not to count exactly, so that slack is accepted
rather than paying for a lock on every request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def take(bucket: str, *, now: float | None = None) -> Verdict:
    """Take one token from ``bucket``, if there is one.

    Name buckets by something never reused (a key's digest, not its id), so
    a bucket outlives no key into another.
    """
    rate = settings.TMC_API_RATE_PER_SECOND
    burst = settings.TMC_API_RATE_BURST
    moment = time.time() if now is None else now
    name = f"tmc:api:bucket:{bucket}"

    tokens, updated = cache.get(name, (float(burst), moment))
    tokens = min(float(burst), tokens + (moment - updated) * rate)
    if tokens < 1.0:
        cache.set(name, (tokens, moment), timeout=int(burst / rate) + 60)
        return Verdict(False, retry_after=max(1, math.ceil((1.0 - tokens) / rate)))
    cache.set(name, (tokens - 1.0, moment), timeout=int(burst / rate) + 60)
    return Verdict(True)
