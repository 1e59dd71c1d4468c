"""The throughput limit holds across threads, in Redis or the database."""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from typing import Any

import pytest
from django.db import connection

from tmc.routing.throughput import (
    throughput_acquire,
    throughput_acquire_many,
    throughput_take,
    throughput_take_many,
)

RATE = 40.0
BURST_SECONDS = 0.1  # a bucket of 4 tokens at 40/s
RUN_SECONDS = 1.5
THREADS = 6


@pytest.fixture(params=["database", "redis"])
def backend(request: pytest.FixtureRequest, settings: Any) -> str:
    settings.TMC_GATEWAY_RATES = {"simulator-limited": RATE}
    settings.TMC_GATEWAY_BURST_SECONDS = BURST_SECONDS
    if request.param == "redis":
        if not settings.TMC_REDIS_URL:
            pytest.skip("TMC_REDIS_URL is not set")
        import redis

        redis.Redis.from_url(settings.TMC_REDIS_URL).delete(
            f"tmc:{settings.HUEY['name']}:throughput:simulator-limited"
        )
    else:
        settings.TMC_REDIS_URL = ""
    return str(request.param)


def _grants(stop_at: float) -> list[float]:
    taken: list[float] = []
    try:
        while time.monotonic() < stop_at:
            wait = throughput_take(name="simulator-limited")
            if wait == 0:
                taken.append(time.monotonic())
            else:
                time.sleep(min(wait, 0.05))
    finally:
        connection.close()
    return taken


@pytest.mark.django_db(transaction=True)
def test_threads_together_never_pass_the_rate(backend: str) -> None:
    """Over any window of w seconds at most capacity + rate * w pass."""
    capacity = RATE * BURST_SECONDS
    results: list[list[float]] = []
    start = time.monotonic()
    stop_at = start + RUN_SECONDS

    threads = [
        threading.Thread(target=lambda: results.append(_grants(stop_at)))
        for _ in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    grants = sorted(t for taken in results for t in taken)
    assert len(results) == THREADS
    assert len(grants) <= capacity + RATE * RUN_SECONDS + 1
    # It is a limit, not a stall: most of the allowance is used.
    assert len(grants) >= RATE * RUN_SECONDS * 0.6
    window = 0.5
    # One token of slack: a grant is timed when the taker sees it.
    allowed = capacity + RATE * window + 1
    for i, begin in enumerate(grants):
        assert bisect_right(grants, begin + window) - i <= allowed


@pytest.mark.django_db(transaction=True)
def test_acquire_gives_up_after_its_longest_wait(backend: str, settings: Any) -> None:
    # A slow refill (a token each 0.25 s), so a loaded machine's pauses
    # between the takes below do not refill the bucket.
    settings.TMC_GATEWAY_RATES = {"simulator-limited": 4.0}
    settings.TMC_GATEWAY_BURST_SECONDS = 1.0
    for _ in range(4):
        assert throughput_acquire(name="simulator-limited", max_wait=0)

    assert not throughput_acquire(name="simulator-limited", max_wait=0)
    assert throughput_acquire(name="simulator-limited", max_wait=1.0)


@pytest.mark.django_db(transaction=True)
def test_a_batch_takes_what_the_bucket_holds_and_no_more(backend: str) -> None:
    capacity = int(RATE * BURST_SECONDS)

    assert throughput_take_many(name="simulator-limited", count=10).granted == capacity
    empty = throughput_take_many(name="simulator-limited", count=10)
    assert (empty.granted, empty.wait > 0) == (0, True)
    assert throughput_acquire_many(name="simulator-limited", count=2, max_wait=1) >= 1
