"""Record activity. Call inside the transaction of the change recorded."""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from tmc.accounts.models import Organisation
from tmc.audit.models import Event
from tmc.identity.models import User

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR is the proxy's address behind a proxy; uvicorn's
    # proxy_headers rewrites it from X-Forwarded-For for trusted proxies.
    return request.META.get("REMOTE_ADDR") or None


def event_record(
    *,
    action: str,
    organisation: Organisation | None = None,
    actor: User | None = None,
    actor_label: str = "",
    target: Any = None,
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> Event:
    if organisation is None and actor is not None:
        organisation = actor.organisation
    label = actor_label or (f"user:{actor.username}" if actor else "system")
    event = Event.objects.create(
        organisation=organisation,
        actor=actor,
        actor_label=label[:200],
        action=action,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(getattr(target, "pk", "") or "") if target is not None else "",
        details=details or {},
        ip_address=client_address(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
    )
    logger.info(
        "event %s id=%s organisation_id=%s actor_id=%s",
        action,
        event.pk,
        organisation.pk if organisation else None,
        actor.pk if actor else None,
    )
    return event
