"""Each gateway's throughput limit, shared by every worker and process.

A token bucket per gateway: it holds up to ``capacity`` tokens, refills at
the gateway's rate (messages per second, TMC_GATEWAY_RATES or
TMC_GATEWAY_RATE), and each submission takes one. Over any window of ``w``
seconds at most ``capacity + rate * w`` submissions pass, whatever the
number of workers. The bucket lives in Redis when TMC_REDIS_URL is set (one
Lua script, atomic on the server, timed by the server's clock), and
otherwise in a database row changed only by a conditional UPDATE.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from typing import Any

from django.conf import settings
from django.db.models import F, FloatField, Value
from django.db.models.functions import Greatest, Least
from django.db.models.lookups import GreaterThanOrEqual

from tmc.routing.models import ThroughputBucket

logger = logging.getLogger(__name__)

# Seconds to wait before trying again; 0 means the token was taken.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


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


def _redis_take(name: str, rate: float, capacity: float) -> float:
    # One deployment's buckets, named like its queue: two installations
    # sharing a Redis keep separate limits.
    key = f"tmc:{settings.HUEY['name']}:throughput:{name}"
    script = _redis_script(settings.TMC_REDIS_URL)
    return float(script(keys=[key], args=[rate, capacity]))


def _database_take(name: str, rate: float, capacity: float) -> float:
    now = time.time()
    elapsed = Greatest(Value(0.0), Value(now) - F("stamp"), output_field=FloatField())
    available = Least(
        Value(capacity),
        F("tokens") + elapsed * Value(rate),
        output_field=FloatField(),
    )
    # The check and the take are one conditional UPDATE: the database
    # re-evaluates the WHERE against the row it locks, so two workers can
    # never both take the last token (a read-then-write could).
    taken = ThroughputBucket.objects.filter(
        GreaterThanOrEqual(available, 1.0), name=name
    ).update(
        tokens=available - Value(1.0),
        stamp=Greatest(F("stamp"), Value(now), output_field=FloatField()),
    )
    if taken:
        return 0.0
    bucket = ThroughputBucket.objects.filter(name=name).first()
    if bucket is None:
        # The first use: a full bucket (two creating it at once: the unique
        # name keeps one, and both then take from it).
        ThroughputBucket.objects.get_or_create(
            name=name, defaults={"tokens": capacity, "stamp": now}
        )
        return _database_take(name, rate, capacity)
    held = min(capacity, bucket.tokens + max(0.0, now - bucket.stamp) * rate)
    return max((1.0 - held) / rate, 0.001)


def bucket_take(*, name: str, rate: float, capacity: float) -> float:
    """Take one token from the bucket ``name``: 0 if taken, else seconds until
    one is due. Also the API's per-key rate limit (``tmc.api.ratelimit``)."""
    if settings.TMC_REDIS_URL:
        return _redis_take(name, rate, capacity)
    return _database_take(name, rate, capacity)


def throughput_take(*, name: str) -> float:
    """Take one token for ``name``: 0 if taken, else seconds until one is due."""
    rate = gateway_rate(name)
    return bucket_take(name=name, rate=rate, capacity=_capacity(rate))


def throughput_acquire(*, name: str, max_wait: float | None = None) -> bool:
    """Wait for a token for ``name``; False if none came within ``max_wait``.

    ``max_wait`` defaults to TMC_THROUGHPUT_MAX_WAIT.
    """
    limit = settings.TMC_THROUGHPUT_MAX_WAIT if max_wait is None else max_wait
    deadline = time.monotonic() + limit
    while True:
        wait = throughput_take(name=name)
        if wait == 0:
            return True
        if time.monotonic() + wait > deadline:
            logger.info("gateway at its throughput limit name=%s", name)
            return False
        time.sleep(wait)
