"""API keys: creation, revocation, and the check made on every API request.

A key is ``tmc_`` followed by 43 URL-safe characters (256 bits). It is shown
once, at creation; what is stored is HMAC-SHA256(pepper, key), the pepper
being a secret in TMC_HOME. A random 256-bit key needs no slow password
hash to resist guessing, so the check on each request is one indexed query.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from tmc.api.models import ApiKey, Scope
from tmc.audit.services import event_record
from tmc.identity.models import Role, User
from tmc.lib import keys

logger = logging.getLogger(__name__)

KEY_PREFIX = "tmc_"
PREFIX_SHOWN = 12
NAME_MAX = 80
# How stale ``last_used_at`` may get before a request writes it again: a
# write on every request would make the key's row the busiest in the
# database for nothing an operator needs to the second.
LAST_USED_EVERY = timedelta(minutes=1)


@lru_cache(maxsize=1)
def _pepper() -> bytes:
    return keys.read_secret(settings.TMC_HOME, keys.API_KEY_PEPPER_FILE).encode()


def key_digest(raw_key: str) -> str:
    return hmac.new(_pepper(), raw_key.encode(), hashlib.sha256).hexdigest()


def networks_parse(entries: Iterable[str]) -> list[str]:
    """Normalise an IP allow-list; raise ValidationError on a bad entry."""
    parsed = []
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        try:
            parsed.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError as exc:
            raise ValidationError(
                {"allowed_networks": f"{entry!r} is not an IP address or CIDR range."}
            ) from exc
    return parsed


def scopes_parse(entries: Iterable[str]) -> list[str]:
    chosen = sorted({entry.strip() for entry in entries if entry.strip()})
    unknown = [entry for entry in chosen if entry not in Scope.values]
    if unknown:
        raise ValidationError(
            {
                "scopes": f"Unknown scope {unknown[0]!r}; choose from "
                f"{', '.join(Scope.values)}."
            }
        )
    if not chosen:
        raise ValidationError({"scopes": "Choose at least one scope."})
    return chosen


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    raw: str


def api_key_create(
    *,
    actor: User | None,
    user: User,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    allowed_networks: Iterable[str] = (),
    request: HttpRequest | None = None,
) -> CreatedKey:
    """Make a key acting as ``user``; the raw key is returned only here.

    ``actor`` is the Controller or Administrator creating it, in the same
    organisation, or None for the command line. An Administrator cannot
    make a key for a Controller: a key is never more than its creator
    could be.
    """
    if actor is not None:
        if actor.organisation_id != user.organisation_id or not actor.is_manager:
            raise PermissionDenied("Controllers and Administrators of this account.")
        if user.role == Role.CONTROLLER and actor.role != Role.CONTROLLER:
            raise PermissionDenied("Only a Controller may make a Controller's key.")
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = "Name the key after the program that will use it."
    elif len(name) > NAME_MAX:
        errors["name"] = f"The name is longer than {NAME_MAX} characters."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_at"] = "The expiry is in the past."
    if not user.is_active:
        errors["user"] = "This user is deactivated."
    try:
        chosen_scopes = scopes_parse(scopes)
    except ValidationError as exc:
        errors["scopes"] = exc.message_dict["scopes"][0]
        chosen_scopes = []
    try:
        networks = networks_parse(allowed_networks)
    except ValidationError as exc:
        errors["allowed_networks"] = exc.message_dict["allowed_networks"][0]
        networks = []
    if errors:
        raise ValidationError(errors)

    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        organisation_id=user.organisation_id,
        user=user,
        name=name,
        prefix=raw[:PREFIX_SHOWN],
        digest=key_digest(raw),
        scopes=chosen_scopes,
        allowed_networks=networks,
        expires_at=expires_at,
        created_by=actor,
    )
    with transaction.atomic():
        key.save()
        event_record(
            action="api_key.created",
            organisation=user.organisation,
            actor=actor,
            actor_label="" if actor else "system:command line",
            target=key,
            details={
                "api_key": key.pk,
                "user": user.pk,
                "scopes": chosen_scopes,
                "networks": len(networks),
                "expires_at": expires_at,
            },
            request=request,
        )
    logger.info(
        "api key created id=%s organisation_id=%s user_id=%s",
        key.pk,
        key.organisation_id,
        user.pk,
    )
    return CreatedKey(key=key, raw=raw)


def api_key_revoke(
    *, actor: User | None, key: ApiKey, request: HttpRequest | None = None
) -> bool:
    """Revoke a key at once; False if it was revoked already.

    The check on each request reads the key's row, so the next request
    with it is refused: there is no cache to wait for.
    """
    if actor is not None:
        assert actor.organisation_id == key.organisation_id
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            event_record(
                action="api_key.revoked",
                organisation=key.organisation,
                actor=actor,
                actor_label="" if actor else "system:command line",
                target=key,
                details={"api_key": key.pk, "user": key.user_id},
                request=request,
            )
    key.refresh_from_db(fields=["revoked_at"])
    if revoked:
        logger.info(
            "api key revoked id=%s organisation_id=%s", key.pk, key.organisation_id
        )
    return bool(revoked)


class KeyRefused(Exception):
    """The request's key cannot be used; ``code`` says why, for the API."""

    def __init__(self, code: str, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _address_allowed(key: ApiKey, address: str | None) -> bool:
    if not key.allowed_networks:
        return True
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(
        ip in ipaddress.ip_network(network, strict=False)
        for network in key.allowed_networks
    )


def api_key_check(*, raw_key: str, address: str | None) -> ApiKey:
    """The live key ``raw_key`` names, or KeyRefused saying why not.

    Unknown, revoked and expired keys, and keys of a user who may not sign
    in now, are 401s; a good key from an address outside its allow-list is
    a 403, since the key itself is fine.
    """
    found = (
        ApiKey.objects.select_related("user", "user__organisation")
        .filter(digest=key_digest(raw_key))
        .first()
    )
    if found is None:
        raise KeyRefused("invalid_key", "The API key is not valid.")
    if found.is_revoked:
        raise KeyRefused("revoked_key", "The API key was revoked.")
    now = timezone.now()
    if found.is_expired(now):
        raise KeyRefused("expired_key", "The API key has expired.")
    user = found.user
    if not user.is_active or user.is_locked or not user.organisation.is_active:
        raise KeyRefused(
            "user_unavailable", "The user this key acts as cannot sign in now."
        )
    if not _address_allowed(found, address):
        raise KeyRefused(
            "ip_not_allowed",
            "The API key may not be used from this address.",
            status=403,
        )

    stale = found.last_used_at is None or now - found.last_used_at > LAST_USED_EVERY
    if stale or found.last_used_ip != address:
        ApiKey.objects.filter(pk=found.pk).update(
            last_used_at=now, last_used_ip=address
        )
        found.last_used_at, found.last_used_ip = now, address
    return found
