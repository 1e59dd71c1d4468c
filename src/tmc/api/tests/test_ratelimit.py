"""The per-key rate limit, with its bucket in Redis and in the database.

Each behaviour runs on both stores: the database always, Redis when the
suite has one (TMC_REDIS_URL), as it has on CI's second run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings

from tmc.api.tests.conftest import ApiClient, MakeClient
from tmc.routing.models import ThroughputBucket
from tmc.testing import Tenant

REDIS_URL = os.environ.get("TMC_REDIS_URL", "")
STORES = [
    pytest.param("", id="database"),
    pytest.param(
        REDIS_URL,
        id="redis",
        marks=pytest.mark.skipif(not REDIS_URL, reason="TMC_REDIS_URL not set"),
    ),
]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Iterator[str]:
    # A token every 100 s: none comes back while a test runs.
    with override_settings(
        TMC_REDIS_URL=request.param, TMC_API_RATE_PER_SECOND=0.01, TMC_API_RATE_BURST=3
    ):
        yield request.param


def _statuses(api: ApiClient, count: int) -> list[int]:
    return [api.get("/account/balance").status_code for _ in range(count)]


def test_a_burst_then_429_with_retry_after(
    store: str, tenant_a: Tenant, api_for: MakeClient
) -> None:
    api = api_for(tenant_a.user)

    statuses = _statuses(api, 3)
    refused = api.get("/account/balance")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    # At 0.01 tokens a second the next one is up to 100 s away.
    assert 90 <= int(refused["Retry-After"]) <= 100


def test_each_key_has_its_own_bucket(
    store: str, tenant_a: Tenant, api_for: MakeClient
) -> None:
    busy, quiet = api_for(tenant_a.user), api_for(tenant_a.user)

    _statuses(busy, 4)

    assert _statuses(quiet, 1) == [200]


def test_without_redis_the_bucket_is_a_database_row(
    store: str, tenant_a: Tenant, api_for: MakeClient
) -> None:
    if store:
        pytest.skip("the database store only")
    api = api_for(tenant_a.user)

    _statuses(api, 2)

    bucket = ThroughputBucket.objects.get(name__startswith="api:")
    assert 0.99 < bucket.tokens < 1.01


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis_url", STORES)
def test_concurrent_requests_never_pass_the_burst(
    redis_url: str, tenant_a: Tenant, api_for: MakeClient
) -> None:
    """Threads, each with its own connection, race for one key's tokens."""
    if not redis_url and connection.vendor == "sqlite":
        pytest.skip("SQLite writes one at a time; the race needs PostgreSQL")
    threads_count, tries, burst = 6, 5, 12
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []
    lock = threading.Lock()

    with override_settings(
        TMC_REDIS_URL=redis_url, TMC_API_RATE_PER_SECOND=0.01, TMC_API_RATE_BURST=burst
    ):
        api = api_for(tenant_a.user)

        def hammer() -> None:
            try:
                barrier.wait()
                got = _statuses(api, tries)
                with lock:
                    statuses.extend(got)
            finally:
                connection.close()

        workers: list[Any] = [
            threading.Thread(target=hammer) for _ in range(threads_count)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    assert len(statuses) == threads_count * tries
    assert statuses.count(200) == burst
    assert set(statuses) == {200, 429}
