"""A token bucket per API key, shared by every web process.

Each key may make TMC_API_RATE_PER_SECOND requests a second, sustained,
and TMC_API_RATE_BURST at once after a quiet spell. The bucket is the one
the gateways' throughput limit uses (``tmc.routing.throughput``): in Redis
when TMC_REDIS_URL is set, taken by one Lua script on the server's clock,
and otherwise in a database row taken by one conditional UPDATE. Either
way the check and the take are one atomic step, so two requests of one key
at the same instant, in two processes, cannot both take the last token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings

from tmc.routing.throughput import bucket_take

# Bucket names share a namespace with the gateways'; no gateway is named so.
PREFIX = "api:"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


def take(bucket: str) -> Verdict:
    """Take one token from ``bucket``, if there is one.

    Name buckets by something never reused (a key's digest, not its id), so
    a bucket outlives no key into another.
    """
    wait = bucket_take(
        name=PREFIX + bucket,
        rate=float(settings.TMC_API_RATE_PER_SECOND),
        capacity=float(settings.TMC_API_RATE_BURST),
    )
    if wait == 0:
        return Verdict(True)
    return Verdict(False, retry_after=max(1, math.ceil(wait)))
