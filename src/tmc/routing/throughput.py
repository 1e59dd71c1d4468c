"""Each gateway's throughput limit, shared by every worker and process.

A token bucket per gateway: it holds up to ``capacity`` tokens, refills at
the gateway's rate (messages per second, TMC_GATEWAY_RATES or
TMC_GATEWAY_RATE), and each submission takes one; a batch takes a token
for each of its messages when the bucket holds them, else a bucketful and
sends that many. Over any window of ``w`` seconds at most
``capacity + rate * w`` submissions pass, whatever the number of workers.
The bucket lives in Redis when TMC_REDIS_URL is set (one Lua script, atomic
on the server, timed by the server's clock), and otherwise in a database
row changed only by a conditional UPDATE.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.db.models import F, FloatField, Value
from django.db.models.functions import Greatest, Least
from django.db.models.lookups import GreaterThanOrEqual

from tmc.routing.models import ThroughputBucket

logger = logging.getLogger(__name__)

# "granted wait": tokens taken (up to ARGV[3], as many as there are), and
# when none, the seconds to wait before trying again.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local granted = math.min(wanted, math.floor(tokens))
local wait = 0
if granted >= 1 then
  tokens = tokens - granted
else
  granted = 0
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(granted) .. ' ' .. tostring(wait)
"""


@dataclass(frozen=True)
class Taken:
    """Tokens taken, and when none were, seconds until one is due."""

    granted: int
    wait: float


def gateway_rate(name: str) -> float:
    """Messages per second the gateway takes.

    A provider staff set up carries its own contracted rate; the built-in
    adapters take theirs from the environment.
    """
    from tmc.gateways.providers import provider_throughput

    configured = provider_throughput(name)
    if configured is not None:
        return float(configured)
    rate: float = settings.TMC_GATEWAY_RATES.get(name, settings.TMC_GATEWAY_RATE)
    return rate


def _capacity(rate: float) -> float:
    return max(1.0, rate * settings.TMC_GATEWAY_BURST_SECONDS)


@cache
def _redis_script(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url).register_script(_TAKE)


def _redis_take(name: str, rate: float, capacity: float, count: int) -> Taken:
    # One deployment's buckets, named like its queue: two installations
    # sharing a Redis keep separate limits.
    key = f"tmc:{settings.HUEY['name']}:throughput:{name}"
    script = _redis_script(settings.TMC_REDIS_URL)
    granted, wait = script(keys=[key], args=[rate, capacity, count]).split()
    return Taken(int(float(granted)), float(wait))


def _database_take(name: str, rate: float, capacity: float, count: int) -> Taken:
    wanted = max(1, min(count, math.floor(capacity)))
    passes = 0
    while True:
        now = time.time()
        elapsed = Greatest(
            Value(0.0), Value(now) - F("stamp"), output_field=FloatField()
        )
        available = Least(
            Value(capacity),
            F("tokens") + elapsed * Value(rate),
            output_field=FloatField(),
        )
        # The check and the take are one conditional UPDATE: the database
        # re-evaluates the WHERE against the row it locks, so two workers
        # can never both take the last tokens (a read-then-write could).
        taken = ThroughputBucket.objects.filter(
            GreaterThanOrEqual(available, float(wanted)), name=name
        ).update(
            tokens=available - Value(float(wanted)),
            stamp=Greatest(F("stamp"), Value(now), output_field=FloatField()),
        )
        if taken:
            return Taken(wanted, 0.0)
        bucket = ThroughputBucket.objects.filter(name=name).first()
        if bucket is None:
            # The first use: a full bucket (two creating it at once: the
            # unique name keeps one, and both then take from it).
            ThroughputBucket.objects.get_or_create(
                name=name, defaults={"tokens": capacity, "stamp": now}
            )
            continue
        held = min(capacity, bucket.tokens + max(0.0, now - bucket.stamp) * rate)
        passes += 1
        if held < 1.0 or passes > 4:
            return Taken(0, max((1.0 - held) / rate, 0.001))
        # Fewer than wanted, or another worker took them between the UPDATE
        # and the read: ask again for what is there now.
        wanted = max(1, min(wanted, math.floor(held)))


def bucket_take(*, name: str, rate: float, capacity: float) -> float:
    """Take one token from the bucket ``name``: 0 if taken, else seconds until
    one is due. Also the API's per-key rate limit (``tmc.api.ratelimit``)."""
    return bucket_take_many(name=name, rate=rate, capacity=capacity, count=1).wait


def bucket_take_many(*, name: str, rate: float, capacity: float, count: int) -> Taken:
    """Take up to ``count`` tokens from the bucket ``name``, as many as it holds."""
    assert count >= 1
    if settings.TMC_REDIS_URL:
        return _redis_take(name, rate, capacity, count)
    return _database_take(name, rate, capacity, count)


def throughput_take(*, name: str) -> float:
    """Take one token for ``name``: 0 if taken, else seconds until one is due."""
    return throughput_take_many(name=name, count=1).wait


def throughput_take_many(*, name: str, count: int) -> Taken:
    """Take up to ``count`` tokens for ``name``, as many as the bucket holds."""
    rate = gateway_rate(name)
    return bucket_take_many(name=name, rate=rate, capacity=_capacity(rate), count=count)


def throughput_acquire(*, name: str, max_wait: float | None = None) -> bool:
    """Wait for a token for ``name``; False if none came within ``max_wait``.

    ``max_wait`` defaults to TMC_THROUGHPUT_MAX_WAIT.
    """
    return throughput_acquire_many(name=name, count=1, max_wait=max_wait) == 1


def throughput_acquire_many(
    *, name: str, count: int, max_wait: float | None = None
) -> int:
    """Wait for tokens for ``name``; return how many were taken (up to ``count``).

    Returns as soon as any are taken, so a batch larger than the bucket is
    sent a bucketful at a time; 0 if none came within ``max_wait``
    (TMC_THROUGHPUT_MAX_WAIT by default).
    """
    limit = settings.TMC_THROUGHPUT_MAX_WAIT if max_wait is None else max_wait
    deadline = time.monotonic() + limit
    while True:
        taken = throughput_take_many(name=name, count=count)
        if taken.granted:
            return taken.granted
        if time.monotonic() + taken.wait > deadline:
            logger.info("gateway at its throughput limit name=%s", name)
            return 0
        time.sleep(taken.wait)
