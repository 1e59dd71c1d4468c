"""``Idempotency-Key``: a retried POST gets the first answer, not a second send.

The key is stored per user (whichever of their API keys sent it) with a
digest of the request. The record is inserted in the same transaction as
the work, before it: a second request with the same key waits on the
unique index until the first commits, then replays its response. A request
that fails keeps no record (its transaction rolls back), so it may be
retried with the same key once the cause is fixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from pydantic import BaseModel

from tmc.api.errors import ApiError
from tmc.api.models import IdempotencyRecord
from tmc.identity.models import User

logger = logging.getLogger(__name__)

KEY_MAX = 255
REPLAYED_HEADER = "Idempotent-Replayed"


def request_digest(request: HttpRequest) -> str:
    """The method, path and body; JSON is compared by value, not by spacing."""
    try:
        body = json.dumps(json.loads(request.body), sort_keys=True).encode()
    except (ValueError, UnicodeDecodeError):
        body = request.body
    material = b"\n".join(
        [
            request.method.encode() if request.method else b"",
            request.path.encode(),
            body,
        ]
    )
    return hashlib.sha256(material).hexdigest()


def _as_response(status: int, content: str, *, replayed: bool) -> HttpResponse:
    response = HttpResponse(content, status=status, content_type="application/json")
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


class _Taken(Exception):
    """Another request holds, or has used, this key."""


def _replay(user: User, key: str, digest: str) -> HttpResponse | None:
    found = IdempotencyRecord.objects.filter(user=user, key=key).first()
    if found is None:
        return None
    if found.request_digest != digest:
        raise ApiError(
            "idempotency_mismatch",
            "This Idempotency-Key was used with a different request.",
        )
    if not found.status_code:
        raise ApiError(
            "idempotency_in_progress",
            "A request with this Idempotency-Key is still being processed.",
        )
    logger.info("idempotent replay record_id=%s user_id=%s", found.pk, user.pk)
    return _as_response(found.status_code, found.response, replayed=True)


def idempotent(
    request: HttpRequest,
    user: User,
    key: str | None,
    produce: Callable[[], tuple[int, BaseModel]],
) -> HttpResponse:
    """Run ``produce`` once per key; its (status, body) is what is replayed.

    Without a key, ``produce`` still runs in one transaction, so work made
    of several rows (a question and its message) commits whole or not at
    all.
    """
    if key is None:
        with transaction.atomic():
            status, body = produce()
        return _as_response(status, body.model_dump_json(), replayed=False)
    if not key or len(key) > KEY_MAX:
        raise ApiError(
            "validation_error",
            f"An Idempotency-Key has 1 to {KEY_MAX} characters.",
            field="Idempotency-Key",
        )

    digest = request_digest(request)
    replayed = _replay(user, key, digest)
    if replayed is not None:
        return replayed
    try:
        with transaction.atomic():
            record = IdempotencyRecord(
                organisation_id=user.organisation_id,
                user=user,
                key=key,
                request_digest=digest,
                status_code=0,
                response_sealed="",
            )
            try:
                with transaction.atomic():
                    record.save()
            except IntegrityError as exc:
                raise _Taken from exc
            status, body = produce()
            content = body.model_dump_json()
            record.status_code = status
            record.seal(response=content)
            record.save(update_fields=["status_code", "response_sealed"])
    except _Taken:
        # The other request committed first (or holds the key still, on a
        # database that does not make us wait): answer as it did.
        replayed = _replay(user, key, digest)
        if replayed is None:
            raise ApiError(
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being processed.",
            ) from None
        return replayed
    return _as_response(status, content, replayed=False)


def idempotency_records_prune(*, now: datetime | None = None) -> int:
    """Delete records older than TMC_API_IDEMPOTENCY_HOURS; their keys are free.

    A record is committed with its answer or not at all (it shares the
    work's transaction), so every row seen here is complete.
    """
    moment = now or timezone.now()
    cutoff = moment - timedelta(hours=settings.TMC_API_IDEMPOTENCY_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    if deleted:
        logger.info("idempotency records pruned count=%s", deleted)
    return int(deleted)
