"""Schemathesis against the API in-process: no 500, no response off-schema.

Runs every operation with generated input (valid and not), through the real
WSGI application, as a Controller whose key has every scope. The number of
examples is bounded so the suite stays quick; raise TMC_FUZZ_EXAMPLES to
search longer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tmc.api.models import Scope
from tmc.api.services import api_key_create
from tmc.testing import Tenant

EXAMPLES = int(os.environ.get("TMC_FUZZ_EXAMPLES", "25"))


# Loaded at collection: the schema view needs no database. (Schemathesis's
# lazy fixture loader does not run under pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
# The key is added to every call below; left to schemathesis, a "missing
# Authorization" case would be sent with it anyway and judged wrongly.
schema.config.generation.update(with_security_parameters=False)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    # As Django's test client does: requests through the WSGI application
    # must not close the connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def bearer(tenant_a: Tenant) -> dict[str, str]:
    created = api_key_create(
        actor=None, user=tenant_a.controller, name="Fuzz", scopes=list(Scope.values)
    )
    return {"Authorization": f"Bearer {created.raw}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_gets_a_500_or_an_undocumented_answer(
    case: Any, bearer: dict[str, str], settings: Any
) -> None:
    # The rate limit would answer 429s to a fuzzer; it is tested on its own.
    settings.TMC_API_RATE_BURST = 10**9
    # Requests that fit the schema may still break a business rule (a number
    # that is no mobile, a group of another account): a 422 there is right.
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance])
