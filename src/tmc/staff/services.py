"""Business rules for provider staff: accounts, log-in, and client access.

Every staff action on a client organisation is recorded in that
organisation's activity log with the member's name, level and stated
reason, so the client's Controllers see who looked at what, and why.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from tmc.accounts.models import CreditLedgerEntry, Organisation, Package
from tmc.accounts.services import (
    InsufficientCredit,
    credits_add,
    credits_debit,
    trial_end,
)
from tmc.audit.services import event_record
from tmc.gateways.models import GatewayProvider
from tmc.gateways.providers import provider_save
from tmc.identity.models import Role, User
from tmc.identity.policy import platform_policy
from tmc.identity.services import USERNAME_PATTERN, WRONG_CREDENTIALS
from tmc.notifications.catalogue import Kind
from tmc.notifications.services import managers_of, notify
from tmc.routing.models import Route
from tmc.routing.services import gateway_reset, route_delete, route_set
from tmc.staff.levels import Capability, Level, may
from tmc.staff.models import (
    StaffAccess,
    StaffMember,
    StaffPasswordHistory,
    StaffSession,
)

logger = logging.getLogger(__name__)

ACCESS_WINDOW = timedelta(minutes=30)
REASON_MIN_LENGTH = 5


def require(member: StaffMember, capability: Capability) -> None:
    if not may(member.level, capability):
        raise PermissionDenied(
            f"Level {member.level} staff may not {capability.value}."
        )


def _record(
    action: str,
    member: StaffMember,
    *,
    organisation: Organisation | None = None,
    target: Any = None,
    details: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> None:
    event_record(
        action=action,
        organisation=organisation,
        actor_label=f"staff:{member.label}",
        target=target,
        details={"staff_id": member.pk, "staff_level": member.level, **(details or {})},
        request=request,
    )


# --- staff accounts ------------------------------------------------------------


def _validate_password(password: str, member: StaffMember) -> list[str]:
    try:
        password_validation.validate_password(password, cast(Any, member))
    except ValidationError as exc:
        return list(exc.messages)
    return []


def staff_create(
    *,
    actor: StaffMember | None,
    username: str,
    full_name: str,
    email: str,
    level: int,
    password: str,
    request: HttpRequest | None = None,
) -> StaffMember:
    """Create a staff member; ``actor`` None is the operator's command line."""
    if actor is not None:
        require(actor, Capability.MANAGE_STAFF)
    username = username.strip()
    errors: dict[str, list[str]] = {}
    if not USERNAME_PATTERN.match(username):
        errors["username"] = ["Use 3 to 150 letters, digits and . _ @ + -."]
    elif StaffMember.objects.filter(username__iexact=username).exists():
        errors["username"] = ["That username is taken."]
    if level not in {lvl.value for lvl in Level}:
        errors["level"] = ["The level must be 1, 2, 3 or 4."]
    if not full_name.strip():
        errors["full_name"] = ["Give the member's name: it appears in client logs."]
    member = StaffMember(
        username=username,
        full_name=full_name.strip(),
        email=email.strip(),
        level=level,
        created_by=actor,
    )
    problems = _validate_password(password, member)
    if problems:
        errors["password"] = problems
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        member.password = make_password(password)
        member.save()
        if actor is not None:
            _record(
                "staff.created",
                actor,
                target=member,
                request=request,
                details={"username": username, "level": level},
            )
        else:
            event_record(
                action="staff.created",
                actor_label="system:command line",
                target=member,
                details={"username": username, "level": level},
            )
    logger.info("staff member created id=%s level=%s", member.pk, level)
    return member


def staff_level_set(
    *,
    actor: StaffMember,
    member: StaffMember,
    level: int,
    request: HttpRequest | None = None,
) -> None:
    require(actor, Capability.MANAGE_STAFF)
    if member.pk == actor.pk:
        raise PermissionDenied("Nobody changes their own level.")
    if level not in {lvl.value for lvl in Level}:
        raise ValidationError({"level": ["The level must be 1, 2, 3 or 4."]})
    with transaction.atomic():
        before = member.level
        StaffMember.objects.filter(pk=member.pk).update(level=level)
        _record(
            "staff.level_changed",
            actor,
            target=member,
            request=request,
            details={"from": before, "to": level},
        )
    member.level = level


def staff_password_expired(member: StaffMember) -> bool:
    """Levels 2 and above must change their password after the policy's age."""
    max_age = platform_policy().staff_password_max_age_days
    if max_age is None or member.level < Level.ACCOUNTANT:
        return False
    return timezone.now() - member.password_changed_at > timedelta(days=max_age)


def staff_password_change(
    *,
    member: StaffMember,
    current: str,
    new: str,
    request: HttpRequest | None = None,
) -> None:
    """Set a new password after checking the current one.

    A wrong current password counts as a failed log-in, as on the client
    forms, so a console left open cannot be used to guess the password
    without limit; the lockout then ends the session.
    """
    if not _staff_current_password_right(member, current, request):
        raise ValidationError({"current_password": ["That is not your password."]})
    problems = _validate_password(new, member)
    if member.second_password and check_password(new, member.second_password):
        problems.append("Your password must differ from your second password.")
    if problems:
        raise ValidationError({"new_password": problems})
    with transaction.atomic():
        StaffPasswordHistory.objects.create(member=member, password=member.password)
        member.password = make_password(new)
        member.password_changed_at = timezone.now()
        member.save(update_fields=["password", "password_changed_at"])
        _record("staff.password_changed", member, target=member, request=request)


def _staff_current_password_right(
    member: StaffMember, attempt: str, request: HttpRequest | None
) -> bool:
    # Committed on its own: the caller refuses the change, but the failure
    # must stay counted. The row lock counts concurrent guesses one by one.
    with transaction.atomic():
        locked = StaffMember.objects.select_for_update().get(pk=member.pk)
        if locked.locked_at is None and check_password(attempt, locked.password):
            return True
        if locked.locked_at is None:
            _count_staff_failure(locked, request)
    member.failed_login_attempts = locked.failed_login_attempts
    member.locked_at = locked.locked_at
    return False


def staff_second_password_set(
    *, member: StaffMember, new: str, request: HttpRequest | None = None
) -> None:
    problems = []
    if check_password(new, member.password):
        problems.append("The second password must differ from your password.")
    try:
        password_validation.validate_password(
            new,
            cast(Any, member),
            password_validators=[
                v
                for v in password_validation.get_default_password_validators()
                if type(v).__name__ != "PasswordHistoryValidator"
            ],
        )
    except ValidationError as exc:
        problems.extend(exc.messages)
    if problems:
        raise ValidationError({"new_second_password": problems})
    with transaction.atomic():
        member.second_password = make_password(new)
        member.save(update_fields=["second_password"])
        _record("staff.second_password_set", member, target=member, request=request)


# --- log in --------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def staff_login(
    *, username: str, password: str, request: HttpRequest | None = None
) -> tuple[StaffMember | None, str]:
    """Check a staff log-in under the same lockout rule as clients.

    Returns the member, or None with the message to show. The row is locked
    for the check so concurrent attempts are counted one by one.
    """
    with transaction.atomic():
        member = (
            StaffMember.objects.select_for_update()
            .filter(username__iexact=username.strip())
            .first()
        )
        if member is None:
            make_password(password)  # the same cost as a wrong password
            return None, WRONG_CREDENTIALS
        right = check_password(password, member.password)
        if member.locked_at is not None or not member.is_active:
            return None, (
                "This staff account is locked. Ask a level 4 member to unlock it."
                if right and member.locked_at is not None
                else WRONG_CREDENTIALS
            )
        if not right:
            _count_staff_failure(member, request)
            return None, WRONG_CREDENTIALS
        member.failed_login_attempts = 0
        member.save(update_fields=["failed_login_attempts"])
        _record("staff.login", member, target=member, request=request)
    return member, ""


def _count_staff_failure(member: StaffMember, request: HttpRequest | None) -> None:
    """Count one wrong password on a row the caller has locked."""
    member.failed_login_attempts += 1
    fields = ["failed_login_attempts"]
    if member.failed_login_attempts >= platform_policy().lockout_attempts:
        member.locked_at = timezone.now()
        fields.append("locked_at")
    member.save(update_fields=fields)
    _record(
        "staff.login_failed",
        member,
        target=member,
        request=request,
        details={"attempt": member.failed_login_attempts},
    )
    if member.locked_at is not None:
        _record("staff.locked", member, target=member, request=request)
        logger.warning("staff member locked id=%s", member.pk)


def staff_session_start(member: StaffMember, request: HttpRequest | None) -> str:
    """Open a staff session; return the token for the staff cookie."""
    token = secrets.token_urlsafe(32)
    StaffSession.objects.create(
        member=member,
        token_hash=_token_hash(token),
        ip_address=(request.META.get("REMOTE_ADDR") if request else None) or None,
    )
    return token


def staff_session_for(token: str) -> StaffSession | None:
    """The live session for a cookie's token, ended if it has been idle."""
    session = (
        StaffSession.objects.select_related("member")
        .filter(token_hash=_token_hash(token), ended_at__isnull=True)
        .first()
    )
    if session is None:
        return None
    idle = timedelta(minutes=platform_policy().idle_minutes)
    member = session.member
    if (
        timezone.now() - session.last_activity_at > idle
        or not member.is_active
        or member.locked_at is not None
    ):
        staff_session_end(session, reason="timeout")
        return None
    return session


def staff_session_touch(session: StaffSession) -> None:
    StaffSession.objects.filter(pk=session.pk).update(last_activity_at=timezone.now())


def staff_session_end(session: StaffSession, *, reason: str) -> None:
    StaffSession.objects.filter(pk=session.pk).update(ended_at=timezone.now())
    _record(f"staff.logout.{reason}", session.member, target=session.member)


def staff_second_factor(
    *, session: StaffSession, attempt: str, request: HttpRequest | None = None
) -> bool:
    policy = platform_policy()
    with transaction.atomic():
        member = StaffMember.objects.select_for_update().get(pk=session.member_id)
        if member.locked_at is not None:
            return False
        if member.second_password and check_password(attempt, member.second_password):
            member.second_password_failures = 0
            member.save(update_fields=["second_password_failures"])
            StaffSession.objects.filter(pk=session.pk).update(second_factor_done=True)
            _record(
                "staff.second_password_used", member, target=member, request=request
            )
            return True
        member.second_password_failures += 1
        fields = ["second_password_failures"]
        if member.second_password_failures >= policy.second_password_attempts:
            member.locked_at = timezone.now()
            fields.append("locked_at")
        member.save(update_fields=fields)
        _record("staff.second_password_failed", member, target=member, request=request)
    return False


# --- access to a client organisation -------------------------------------------


def access_current(
    member: StaffMember, organisation: Organisation
) -> StaffAccess | None:
    return (
        StaffAccess.objects.filter(
            member=member, organisation=organisation, expires_at__gt=timezone.now()
        )
        .order_by("-opened_at")
        .first()
    )


def access_open(
    *,
    member: StaffMember,
    organisation: Organisation,
    reason: str,
    request: HttpRequest | None = None,
) -> StaffAccess:
    """Open a 30-minute window on one organisation, for a stated reason."""
    require(member, Capability.FIND_ORGANISATIONS)
    reason = " ".join(reason.split())
    if len(reason) < REASON_MIN_LENGTH:
        raise ValidationError(
            {"reason": ["State why you need access, e.g. a support ticket number."]}
        )
    with transaction.atomic():
        access = StaffAccess.objects.create(
            member=member,
            organisation=organisation,
            reason=reason[:200],
            expires_at=timezone.now() + ACCESS_WINDOW,
        )
        _record(
            "staff.access_opened",
            member,
            organisation=organisation,
            target=organisation,
            details={"reason": access.reason},
            request=request,
        )
        notify(
            kind=Kind.STAFF_ACCESS,
            recipients=managers_of(organisation, roles=[Role.CONTROLLER]),
            context={
                "member": member,
                "reason": access.reason,
                "organisation": organisation,
            },
        )
    return access


def access_record(
    *,
    access: StaffAccess,
    action: str,
    details: dict[str, Any] | None = None,
    target: Any = None,
    request: HttpRequest | None = None,
) -> None:
    """Record something a member did within an access window."""
    _record(
        action,
        access.member,
        organisation=access.organisation,
        target=target or access.organisation,
        details={"reason": access.reason, **(details or {})},
        request=request,
    )


def credits_adjust(
    *,
    access: StaffAccess,
    amount: int,
    reason: str,
    request: HttpRequest | None,
    purchase: bool = False,
) -> CreditLedgerEntry:
    """Add or remove credits; ``purchase`` marks added credits as bought.

    A purchase ends the free trial (``credits_add``); a goodwill adjustment
    does not.
    """
    require(access.member, Capability.ADJUST_CREDITS)
    if amount == 0:
        raise ValidationError({"amount": ["Give a positive or negative amount."]})
    if len(reason.strip()) < REASON_MIN_LENGTH:
        raise ValidationError({"reason": ["Say why the credits change."]})
    if purchase and amount < 0:
        raise ValidationError({"amount": ["A purchase adds credits."]})
    organisation = access.organisation
    note = f"{reason.strip()} (by {access.member.label})"
    with transaction.atomic():
        if amount > 0:
            entry = credits_add(
                organisation=organisation,
                amount=amount,
                kind=(
                    CreditLedgerEntry.Kind.PURCHASE
                    if purchase
                    else CreditLedgerEntry.Kind.ADJUSTMENT
                ),
                reason=note,
            )
        else:
            try:
                entry = credits_debit(
                    organisation=organisation,
                    amount=-amount,
                    reason=note,
                    kind=CreditLedgerEntry.Kind.ADJUSTMENT,
                )
            except InsufficientCredit as exc:
                raise ValidationError({"amount": [str(exc)]}) from exc
        access_record(
            access=access,
            action="staff.credits_adjusted",
            details={
                "amount": amount,
                "purchase": purchase,
                "note": reason.strip(),
                "balance_after": entry.balance_after,
            },
            request=request,
        )
    return entry


def package_change(
    *,
    access: StaffAccess,
    package: Package | None,
    reason: str,
    request: HttpRequest | None,
) -> None:
    """Move the organisation to ``package`` (or none), for a stated reason.

    Changing the package moves no credits: credits come only from a
    purchase or a credits adjustment, each a ledger entry of its own. So the
    change and its reason are recorded in the organisation's activity log
    (``note``, beside the access window's reason), not in the ledger.
    Choosing a package ends the free trial, and the event says so.
    """
    require(access.member, Capability.CHANGE_PACKAGE)
    note = " ".join(reason.split())
    if len(note) < REASON_MIN_LENGTH:
        raise ValidationError(
            {"reason": ["Say why the package changes, e.g. the customer's order."]}
        )
    organisation = access.organisation
    with transaction.atomic():
        before = organisation.package.name if organisation.package else None
        Organisation.objects.filter(pk=organisation.pk).update(package=package)
        details: dict[str, Any] = {
            "from": before,
            "to": package.name if package else None,
            "note": note,
        }
        if package is not None and trial_end(
            organisation=organisation, cause="package"
        ):
            details["trial_ended"] = True
        access_record(
            access=access,
            action="staff.package_changed",
            details=details,
            request=request,
        )
    organisation.package = package


def client_user_unlock(
    *, access: StaffAccess, user: User, request: HttpRequest | None
) -> None:
    require(access.member, Capability.UNLOCK_USERS)
    if user.organisation_id != access.organisation_id:
        raise PermissionDenied("That user is not in this organisation.")
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(
            locked_at=None,
            failed_login_attempts=0,
            second_password_locked_at=None,
            second_password_failures=0,
        )
        access_record(
            access=access,
            action="user.unlocked",
            target=user,
            details={"username": user.username},
            request=request,
        )


def organisation_suspend(
    *, access: StaffAccess, suspend: bool, request: HttpRequest | None
) -> None:
    require(access.member, Capability.SUSPEND_ORGANISATIONS)
    with transaction.atomic():
        Organisation.objects.filter(pk=access.organisation_id).update(
            is_active=not suspend
        )
        access_record(
            access=access,
            action="organisation.suspended" if suspend else "organisation.reinstated",
            request=request,
        )
    access.organisation.is_active = not suspend


def full_number_reveal(
    *, access: StaffAccess, number: str, source: Any, request: HttpRequest | None
) -> str:
    """Show one full mobile number; the view itself is recorded."""
    require(access.member, Capability.VIEW_FULL_NUMBERS)
    access_record(
        access=access, action="staff.full_number_viewed", target=source, request=request
    )
    return number


def staff_unlock(
    *, actor: StaffMember, member: StaffMember, request: HttpRequest | None
) -> None:
    require(actor, Capability.MANAGE_STAFF)
    StaffMember.objects.filter(pk=member.pk).update(
        locked_at=None, failed_login_attempts=0, second_password_failures=0
    )
    _record("staff.unlocked", actor, target=member, request=request)


# --- routes --------------------------------------------------------------------


def staff_route_set(
    *,
    actor: StaffMember,
    prefix: str,
    gateways: Sequence[str],
    request: HttpRequest | None = None,
) -> Route:
    """Create or replace a route (level 3); raise ValidationError."""
    require(actor, Capability.MANAGE_GATEWAYS)
    with transaction.atomic():
        route = route_set(prefix=prefix, gateways=gateways)
        _record(
            "route.set",
            actor,
            target=route,
            request=request,
            details={"prefix": route.prefix, "gateways": list(route.gateways)},
        )
    return route


def staff_route_delete(
    *, actor: StaffMember, prefix: str, request: HttpRequest | None = None
) -> bool:
    """Remove a route (level 3); return whether there was one."""
    require(actor, Capability.MANAGE_GATEWAYS)
    with transaction.atomic():
        deleted = route_delete(prefix=prefix)
        if deleted:
            _record("route.deleted", actor, request=request, details={"prefix": prefix})
    return deleted


def staff_gateway_provider_save(
    *,
    actor: StaffMember,
    provider: GatewayProvider | None,
    kind: str,
    name: str,
    enabled: bool,
    throughput: int,
    settings: dict[str, Any],
    secrets: dict[str, str],
    request: HttpRequest | None = None,
) -> GatewayProvider:
    """Add or change a gateway provider (level 3); raise ValidationError.

    The activity event names what changed, and which credentials were
    replaced, never their values.
    """
    require(actor, Capability.MANAGE_GATEWAYS)
    creating = provider is None
    with transaction.atomic():
        saved, changed = provider_save(
            provider=provider,
            name=name,
            kind=kind,
            enabled=enabled,
            throughput=throughput,
            settings=settings,
            secrets=secrets,
        )
        _record(
            "gateway.provider_created" if creating else "gateway.provider_changed",
            actor,
            target=saved,
            request=request,
            details={"provider": saved.name, "kind": saved.kind, "changed": changed},
        )
    return saved


def staff_gateway_reset(
    *, actor: StaffMember, name: str, request: HttpRequest | None = None
) -> None:
    """Put a gateway back in service before its back-off ends (level 3)."""
    require(actor, Capability.MANAGE_GATEWAYS)
    with transaction.atomic():
        gateway_reset(name=name)
        _record("gateway.reset", actor, request=request, details={"gateway": name})
