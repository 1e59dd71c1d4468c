"""Web sessions: start and end them, track them, and expire them when idle.

Django's session holds who is signed in; ``UserSession`` rows let a user
see their sessions and end the others, and the idle rule runs on the server
(the page's countdown only warns).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import login, logout
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.module_loading import import_string

from tmc.audit.services import client_address, event_record
from tmc.identity.models import RememberedDevice, User, UserSession
from tmc.identity.policy import policy_for
from tmc.notifications.catalogue import Kind
from tmc.notifications.services import notify

logger = logging.getLogger(__name__)

SESSION_ID = "tmc_sid"
LAST_ACTIVITY = "tmc_last_activity"
SECOND_FACTOR_UNTIL = "tmc_second_factor_until"
DEVICE_COOKIE = "tmc_device"
BACKGROUND_HEADER = "HTTP_X_TMC_BACKGROUND"
# Writing last_activity_at on every request would cost a write per click;
# once a minute is precise enough for the "my sessions" list.
ACTIVITY_WRITE_INTERVAL = 60
ACTIVITY_SESSION_RESOLUTION = 5


def _now() -> float:
    return time.time()


def is_background(request: HttpRequest) -> bool:
    """Requests a page makes by itself (polling) that are not activity."""
    return request.META.get(BACKGROUND_HEADER) == "1"


def session_start(
    request: HttpRequest, user: User, *, device: RememberedDevice | None = None
) -> UserSession:
    """Sign ``user`` in: a new session id, a tracked session, activity now."""
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_ID] = secrets.token_urlsafe(32)
    request.session[LAST_ACTIVITY] = _now()
    request.session.save()
    return UserSession.objects.create(
        user=user,
        key=request.session[SESSION_ID],
        session_key=request.session.session_key or "",
        ip_address=client_address(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        via_device=device is not None,
        device=device,
    )


def current_session(request: HttpRequest) -> UserSession | None:
    key = request.session.get(SESSION_ID)
    if not key:
        return None
    return UserSession.objects.filter(key=key).first()


def session_end(request: HttpRequest, *, reason: str) -> None:
    """End this browser's session: the tracked row, then Django's session."""
    tracked = current_session(request)
    user = request.user if request.user.is_authenticated else None
    with transaction.atomic():
        if tracked is not None and tracked.ended_at is None:
            tracked.ended_at = timezone.now()
            tracked.end_reason = reason
            tracked.save(update_fields=["ended_at", "end_reason"])
        if isinstance(user, User):
            event_record(
                action=f"logout.{reason}", actor=user, target=user, request=request
            )
    logout(request)


def _session_store() -> type[SessionBase]:
    engine = import_string(f"{settings.SESSION_ENGINE}.SessionStore")
    assert issubclass(engine, SessionBase)
    return cast(type[SessionBase], engine)


def other_session_end(
    *, user: User, session: UserSession, request: HttpRequest | None = None
) -> None:
    """End one of ``user``'s sessions elsewhere (from "my sessions")."""
    if session.user_id != user.pk:
        raise ValueError("not this user's session")
    with transaction.atomic():
        session.ended_at = timezone.now()
        session.end_reason = "ended by user"
        session.save(update_fields=["ended_at", "end_reason"])
        event_record(
            action="session.ended",
            actor=user,
            target=session,
            details={"session": session.pk},
            request=request,
        )
    _session_store()(session_key=session.session_key).delete()


def user_sessions_end(*, user: User, reason: str) -> int:
    """End every session of ``user``, wherever it is; return how many."""
    return _sessions_end(
        UserSession.objects.filter(user=user, ended_at__isnull=True), reason=reason
    )


def user_devices_forget(*, user: User, reason: str) -> int:
    """Revoke all of ``user``'s remembered devices and end their sessions."""
    devices = list(user.remembered_devices.filter(revoked_at__isnull=True))
    for device in devices:
        device_revoke(actor=user, device=device)
    if devices:
        logger.info(
            "devices forgotten user_id=%s count=%s (%s)", user.pk, len(devices), reason
        )
    return len(devices)


def _sessions_end(sessions: QuerySet[UserSession], *, reason: str) -> int:
    store = _session_store()
    ended = list(sessions)
    for session in ended:
        session.ended_at = timezone.now()
        session.end_reason = reason
        session.save(update_fields=["ended_at", "end_reason"])
        store(session_key=session.session_key).delete()
    return len(ended)


def enforce(request: HttpRequest) -> str | None:
    """Apply the session rules; return why the session ended, if it did."""
    user = request.user
    if not isinstance(user, User):
        return None
    tracked = current_session(request)
    if tracked is None or tracked.ended_at is not None:
        logout(request)
        return "ended"
    if (
        not user.is_active
        or user.locked_at is not None
        or not user.organisation.is_active
    ):
        session_end(request, reason="account_disabled")
        return "disabled"

    now = _now()
    idle_limit = policy_for(user.organisation).idle_minutes * 60
    last = float(request.session.get(LAST_ACTIVITY, now))
    if now - last > idle_limit:
        session_end(request, reason="timeout")
        return "timeout"

    # Saving the session only when the recorded activity is a few seconds
    # old spares a write per request while keeping the idle rule exact to
    # within those seconds.
    if not is_background(request) and now - last >= ACTIVITY_SESSION_RESOLUTION:
        request.session[LAST_ACTIVITY] = now
        seen = tracked.last_activity_at.timestamp()
        if now - seen > ACTIVITY_WRITE_INTERVAL:
            UserSession.objects.filter(pk=tracked.pk).update(
                last_activity_at=timezone.now()
            )
    if tracked.session_key != request.session.session_key:
        UserSession.objects.filter(pk=tracked.pk).update(
            session_key=request.session.session_key or ""
        )
    return None


# --- the second password's window ----------------------------------------------


def second_factor_grant(request: HttpRequest) -> None:
    """Open the control areas; a new session id marks the privilege change."""
    request.session.cycle_key()
    second_factor_touch(request)


def second_factor_touch(request: HttpRequest) -> None:
    user = request.user
    assert isinstance(user, User)
    window = policy_for(user.organisation).second_password_window_minutes * 60
    request.session[SECOND_FACTOR_UNTIL] = _now() + window


def second_factor_fresh(request: HttpRequest) -> bool:
    return float(request.session.get(SECOND_FACTOR_UNTIL, 0)) > _now()


# --- remembered devices ------------------------------------------------------


def _token_hash(token: str) -> str:
    # A fast hash is right here: the token is 256 random bits, so there is
    # nothing to brute-force, and it is looked up on every remembered visit.
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def device_remember(request: HttpRequest, response: HttpResponse, user: User) -> None:
    token = secrets.token_urlsafe(32)
    device = RememberedDevice.objects.create(
        user=user,
        name=request.META.get("HTTP_USER_AGENT", "Unknown device")[:200],
        token_hash=_token_hash(token),
    )
    device_cookie_set(response, user, token)
    event_record(action="device.remembered", actor=user, target=user, request=request)
    notify(
        kind=Kind.NEW_DEVICE,
        recipients=[user],
        context={
            "device": device.name,
            "address": client_address(request),
            "when": device.created_at,
        },
        link=reverse("identity:account"),
    )


def device_forget(request: HttpRequest, response: HttpResponse) -> None:
    token = request.COOKIES.get(DEVICE_COOKIE)
    if token:
        RememberedDevice.objects.filter(
            token_hash=_token_hash(token), revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
    response.delete_cookie(DEVICE_COOKIE, samesite="Lax")


def device_login(request: HttpRequest) -> User | None:
    """Sign in from a remembered-device cookie; never opens control areas."""
    token = request.COOKIES.get(DEVICE_COOKIE)
    if not token:
        return None
    device = (
        RememberedDevice.objects.select_related("user__organisation")
        .filter(token_hash=_token_hash(token), revoked_at__isnull=True)
        .first()
    )
    if device is None:
        return None
    user = device.user
    lifetime = timedelta(days=policy_for(user.organisation).device_token_days)
    if timezone.now() - device.last_used_at > lifetime:
        device.revoked_at = timezone.now()
        device.save(update_fields=["revoked_at"])
        return None
    if not user.is_active or user.locked_at is not None:
        return None

    with transaction.atomic():
        device.last_used_at = timezone.now()
        device.save(update_fields=["last_used_at"])
        session_start(request, user, device=device)
        # Renewed on use: the cookie lasts as long after the last use as the
        # device token does.
        request._tmc_renew_device = token  # type: ignore[attr-defined]
        event_record(
            action="login.device",
            actor=user,
            target=device,
            details={"device": device.pk},
            request=request,
        )
    return user


def device_cookie_set(response: HttpResponse, user: User, token: str) -> None:
    days = policy_for(user.organisation).device_token_days
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=days * 86400,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def device_revoke(
    *, actor: User, device: RememberedDevice, request: Any = None
) -> None:
    """Forget a device, and end the sessions it opened that are still live."""
    with transaction.atomic():
        RememberedDevice.objects.filter(pk=device.pk).update(revoked_at=timezone.now())
        _sessions_end(
            UserSession.objects.filter(device=device, ended_at__isnull=True),
            reason="device forgotten",
        )
        event_record(
            action="device.revoked",
            actor=actor,
            target=device,
            details={"owner": device.user_id},
            request=request,
        )
