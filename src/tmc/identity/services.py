"""Business rules for client users: accounts, passwords, log-in, lockout.

Every rule that reads a number (attempts, lengths, minutes) takes it from the
security policy in force for the user's organisation.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import password_validation
from django.contrib.auth.hashers import check_password, make_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.audit.services import event_record
from tmc.identity.models import (
    ROLE_DEFAULTS,
    ROLE_RANK,
    PasswordHistory,
    Permission,
    Role,
    User,
)
from tmc.identity.policy import policy_for
from tmc.identity.sessions import user_devices_forget, user_sessions_end
from tmc.notifications.catalogue import Channel, Kind
from tmc.notifications.services import (
    administrators_of,
    email_user,
    managers_of,
    notify,
)

logger = logging.getLogger(__name__)

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{2,149}$")
WRONG_CREDENTIALS = (
    "Please enter a correct username and password. Note that both fields may be "
    "case-sensitive."
)
ACCOUNT_LOCKED = (
    "This account is locked after too many failed attempts. Ask your "
    "organisation's Controller, or TMC support, to unlock it."
)
MANAGER_ONLY = frozenset({Permission.CREATE_USERS, Permission.VIEW_REPORTS})
RIGHTS_LIMITS = ("daily_message_limit", "monthly_message_limit")


# --- users -----------------------------------------------------------------


@dataclass(frozen=True)
class UserChanges:
    """What a Controller or Administrator may set on a user."""

    role: str
    full_name: str
    email: str
    permissions: frozenset[str]
    daily_message_limit: int | None
    monthly_message_limit: int | None
    is_active: bool = True
    mobile: str = ""


def _check_grant(actor: User, changes: UserChanges, target: User | None) -> None:
    """Refuse anything the actor could not do or does not hold themselves."""
    if not actor.is_manager or not actor.can_create_users:
        raise PermissionDenied("You may not manage users.")
    if target is not None:
        if target.organisation_id != actor.organisation_id:
            raise PermissionDenied("That user belongs to another organisation.")
        if target.role == Role.CONTROLLER and actor.role != Role.CONTROLLER:
            raise PermissionDenied("Only a Controller may change a Controller.")
    if ROLE_RANK[Role(changes.role)] > ROLE_RANK[Role(actor.role)]:
        raise PermissionDenied("You may not give a role above your own.")

    errors: dict[str, list[str]] = {}
    beyond = changes.permissions - actor.permissions()
    if beyond:
        errors["permissions"] = [
            "You may not grant what you do not hold: "
            + ", ".join(sorted(Permission(p).label for p in beyond))
        ]
    if changes.role == Role.USER and changes.permissions & MANAGER_ONLY:
        errors.setdefault("permissions", []).append(
            "Managing users and seeing reports need the Administrator or "
            "Controller role."
        )
    for field in ("daily_message_limit", "monthly_message_limit"):
        own = getattr(actor, field)
        wanted = getattr(changes, field)
        if own is not None and (wanted is None or wanted > own):
            errors[field] = [f"You may not set more than your own limit of {own}."]
    if errors:
        raise ValidationError(errors)


def _apply(user: User, changes: UserChanges) -> None:
    user.role = changes.role
    user.full_name = changes.full_name.strip()
    user.email = changes.email.strip()
    user.daily_message_limit = changes.daily_message_limit
    user.monthly_message_limit = changes.monthly_message_limit
    user.is_active = changes.is_active
    user.mobile = changes.mobile
    for permission in Permission.values:
        setattr(user, permission, permission in changes.permissions)


def _validate_identity(username: str | None, email: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if username is not None:
        if not USERNAME_PATTERN.match(username):
            errors["username"] = [
                "Use 3 to 150 letters, digits and . _ @ + - (starting with a "
                "letter or digit)."
            ]
        elif User.objects.filter(username__iexact=username).exists():
            errors["username"] = ["That username is taken."]
    try:
        validate_email(email)
    except ValidationError as exc:
        errors["email"] = list(exc.messages)
    return errors


def user_create(
    *,
    organisation: Organisation,
    username: str,
    email: str,
    password: str | None,
    role: Role = Role.USER,
    full_name: str = "",
    created_by: User | None = None,
    changes: UserChanges | None = None,
    request: HttpRequest | None = None,
) -> User:
    """Create a user; refuse bad input (ValidationError by field) or rights.

    ``created_by`` is the Controller or Administrator acting; without one the
    call is the platform's own (opening an account, the command line). With
    no ``password`` the new user is emailed a link to choose one, so nobody
    else ever knows it.
    """
    username = username.strip()
    changes = changes or UserChanges(
        role=role,
        full_name=full_name,
        email=email,
        permissions=ROLE_DEFAULTS[role],
        daily_message_limit=None,
        monthly_message_limit=None,
    )
    if created_by is not None:
        _check_grant(created_by, changes, None)

    errors = _validate_identity(username, changes.email)
    candidate = User(username=username, organisation=organisation)
    _apply(candidate, changes)
    if password is not None:
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as exc:
            errors["password"] = list(exc.messages)
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        candidate.set_password(password)
        if password is not None:
            candidate.password_changed_at = timezone.now()
        candidate.save()
        if password is None:
            email_user(
                user=candidate,
                template="welcome",
                context={
                    "user": candidate,
                    "link": password_setting_link(candidate, request),
                    "created_by": created_by,
                },
            )
        event_record(
            action="user.created",
            organisation=organisation,
            actor=created_by,
            target=candidate,
            details={"username": username, "role": str(changes.role)},
            request=request,
        )
        notify(
            kind=Kind.USER_CREATED,
            recipients=[m for m in managers_of(organisation) if m.pk != candidate.pk],
            template="new_user",
            context={"user": candidate, "created_by": created_by},
            link=reverse("identity:user_edit", kwargs={"user_id": candidate.pk}),
        )
    logger.info(
        "user created id=%s organisation_id=%s role=%s",
        candidate.pk,
        organisation.pk,
        changes.role,
    )
    return candidate


def _active_controllers(organisation_id: int, *, excluding: int) -> int:
    return (
        User.objects.filter(
            organisation_id=organisation_id,
            role=Role.CONTROLLER,
            is_active=True,
            locked_at__isnull=True,
        )
        .exclude(pk=excluding)
        .count()
    )


def _keeps_a_controller(target: User, *, stays_controller: bool) -> None:
    """Refuse to leave an organisation without an active, unlocked Controller."""
    if target.role != Role.CONTROLLER or stays_controller:
        return
    # Lock every Controller of the organisation so that two managers
    # demoting the last two Controllers at once cannot both pass the count.
    list(
        User.objects.select_for_update()
        .filter(organisation_id=target.organisation_id, role=Role.CONTROLLER)
        .values_list("pk", flat=True)
    )
    if _active_controllers(target.organisation_id, excluding=target.pk) == 0:
        raise ValidationError(
            {"role": ["The organisation must keep at least one active Controller."]}
        )


def user_update(
    *,
    actor: User,
    target: User,
    changes: UserChanges,
    request: HttpRequest | None = None,
) -> User:
    _check_grant(actor, changes, target)
    errors = _validate_identity(None, changes.email)
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        target = User.objects.select_for_update().get(pk=target.pk)
        _keeps_a_controller(
            target,
            stays_controller=changes.role == Role.CONTROLLER and changes.is_active,
        )
        before = _snapshot(target)
        _apply(target, changes)
        target.save()
        if _rights_change(before, _snapshot(target)):
            # Sessions opened with the old rights end now, whichever way the
            # rights moved: a session key that existed before a grant must
            # not carry the new rights (the privilege-change rotation), and
            # one that outlives a withdrawal would keep them until log-out.
            user_sessions_end(user=target, reason="rights changed")
        changed = {
            key: {"from": before[key], "to": value}
            for key, value in _snapshot(target).items()
            if before[key] != value
        }
        # One event per change; a change to what the user may do is filed
        # as a permission change, so it can be found apart from renames.
        rights = {"role", *RIGHTS_LIMITS, *Permission.values}
        event_record(
            action=(
                "user.permissions_changed"
                if rights & changed.keys()
                else "user.updated"
            ),
            actor=actor,
            target=target,
            details={"changed": changed},
            request=request,
        )
    return target


def _rights_change(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """A role or a permission moved either way, or the user was deactivated.

    Message limits are left out: they are read afresh at every send and
    no session holds them.
    """
    if after["is_active"] is False and before["is_active"]:
        return True
    if after["role"] != before["role"]:
        return True
    return any(before[p] != after[p] for p in Permission.values)


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "role": user.role,
        "full_name": user.full_name,
        "email": user.email,
        "mobile": "changed" if user.mobile else "",
        "is_active": user.is_active,
        "daily_message_limit": user.daily_message_limit,
        "monthly_message_limit": user.monthly_message_limit,
        **{p: user.has_permission(p) for p in Permission.values},
    }


def user_unlock(
    *, actor: User, target: User, request: HttpRequest | None = None
) -> None:
    """Unlock log-in and second password; only a Controller of the same org."""
    if actor.role != Role.CONTROLLER or actor.organisation_id != target.organisation_id:
        raise PermissionDenied("Only a Controller of this organisation may unlock.")
    with transaction.atomic():
        updated = User.objects.filter(pk=target.pk).update(
            locked_at=None,
            failed_login_attempts=0,
            second_password_locked_at=None,
            second_password_failures=0,
        )
        assert updated == 1
        event_record(
            action="user.unlocked", actor=actor, target=target, request=request
        )
    target.refresh_from_db()


# --- passwords ---------------------------------------------------------------


def password_setting_link(user: User, request: HttpRequest | None) -> str:
    """A single-use link (Django's reset token) to choose a password."""
    from django.conf import settings
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    path = reverse(
        "identity:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.TMC_BASE_URL.rstrip("/") + path


def password_change(
    *,
    user: User,
    new_password: str,
    current_password: str | None,
    request: HttpRequest | None = None,
    reason: str = "changed",
) -> None:
    """Set a new password after checking the current one (unless a reset).

    A wrong current password counts as a failed log-in, so a session left
    open cannot be used to guess the password without limit. The old hash
    goes into the history that refuses reuse, and the organisation's
    managers are told.
    """
    if current_password is not None and not _current_password_right(
        user, current_password, request
    ):
        raise ValidationError({"current_password": ["That is not your password."]})
    problems = []
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        problems.extend(exc.messages)
    if user.second_password and check_password(new_password, user.second_password):
        problems.append("Your password must differ from your second password.")
    if problems:
        raise ValidationError({"new_password": problems})

    with transaction.atomic():
        PasswordHistory.objects.create(user=user, password=user.password)
        user.set_password(new_password)
        user.password_changed_at = timezone.now()
        user.save(update_fields=["password", "password_changed_at"])
        # A new password is often the answer to a suspected compromise:
        # devices that skip the password must not outlive the old one.
        user_devices_forget(user=user, reason=f"password {reason}")
        event_record(
            action=f"password.{reason}", actor=user, target=user, request=request
        )
        notify(
            kind=Kind.PASSWORD_CHANGED,
            recipients=[*administrators_of(user.organisation, other_than=user), user],
            context={"user": user, "reason": reason},
        )


def _current_password_right(
    user: User, attempt: str, request: HttpRequest | None
) -> bool:
    # The failure must be recorded even though the caller then refuses the
    # change, so it is committed here, on its own.
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.locked_at is None and locked.check_password(attempt):
            return True
        if locked.locked_at is None:
            _count_failure(locked, request)
    return False


# --- log in and lockout ------------------------------------------------------


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    error: str = ""


def login_attempt(
    *, username: str, password: str, request: HttpRequest | None = None
) -> LoginResult:
    """Check a username and password under the lockout rule.

    The user's row is locked for the whole check, so concurrent attempts are
    counted one after another: once the limit is reached, no attempt in
    flight can slip through, whatever order they arrive in. An unknown
    username costs one password hash too, so timing does not reveal which
    usernames exist; a locked account answers like a wrong password until
    the right one is given.
    """
    with transaction.atomic():
        user = (
            User.objects.select_for_update()
            .select_related("organisation")
            .filter(username__iexact=username.strip())
            .first()
        )
        if user is None:
            make_password(password)
            event_record(
                action="login.failed",
                actor_label="unknown",
                details={"reason": "unknown username"},
                request=request,
            )
            return LoginResult(None, WRONG_CREDENTIALS)

        right = user.check_password(password)
        if user.locked_at is not None:
            event_record(
                action="login.refused_locked", actor=user, target=user, request=request
            )
            return LoginResult(None, ACCOUNT_LOCKED if right else WRONG_CREDENTIALS)
        if not user.is_active or not user.organisation.is_active:
            event_record(
                action="login.refused_inactive",
                actor=user,
                target=user,
                request=request,
            )
            return LoginResult(None, WRONG_CREDENTIALS)
        if not right:
            _count_failure(user, request)
            return LoginResult(None, WRONG_CREDENTIALS)

        user.failed_login_attempts = 0
        user.last_login = timezone.now()
        user.save(update_fields=["failed_login_attempts", "last_login"])
        event_record(action="login.succeeded", actor=user, target=user, request=request)
    return LoginResult(user)


def _count_failure(user: User, request: HttpRequest | None) -> None:
    policy = policy_for(user.organisation)
    user.failed_login_attempts += 1
    fields = ["failed_login_attempts"]
    if user.failed_login_attempts >= policy.lockout_attempts:
        user.locked_at = timezone.now()
        fields.append("locked_at")
    user.save(update_fields=fields)
    event_record(
        action="login.failed",
        actor=user,
        target=user,
        details={"attempt": user.failed_login_attempts},
        request=request,
    )
    if user.locked_at is not None:
        event_record(action="user.locked", actor=user, target=user, request=request)
        _locked_notify(user, attempts=user.failed_login_attempts)
        logger.warning("user locked id=%s", user.pk)


def _locked_notify(user: User, *, attempts: int, second_factor: bool = False) -> None:
    """Administrators hear in the app and by email; the user, who cannot
    sign in to read a notice, by email only."""
    context = {"user": user, "attempts": attempts, "second_factor": second_factor}
    notify(
        kind=Kind.ACCOUNT_LOCKED,
        recipients=administrators_of(user.organisation, other_than=user),
        context=context,
        link=reverse("identity:users"),
    )
    notify(
        kind=Kind.ACCOUNT_LOCKED,
        recipients=[user],
        template="account_locked_you",
        context=context,
        channels=[Channel.EMAIL],
    )


# --- second password ---------------------------------------------------------


def second_password_set(
    *, user: User, new_password: str, current: str | None, request: HttpRequest | None
) -> None:
    """Set the second password; it must differ from the log-in password.

    Changing it needs the current one, checked under the second factor's own
    lockout, so this form cannot be used to guess it either.
    """
    if user.second_password and not _current_second_password_right(
        user, current or "", request
    ):
        raise ValidationError(
            {"current_second_password": ["That is not your second password."]}
        )
    errors = []
    if user.check_password(new_password):
        errors.append("The second password must differ from your log-in password.")
    try:
        password_validation.validate_password(
            new_password, user, password_validators=_second_password_validators()
        )
    except ValidationError as exc:
        errors.extend(exc.messages)
    if errors:
        raise ValidationError({"new_second_password": errors})

    with transaction.atomic():
        user.second_password = make_password(new_password)
        user.save(update_fields=["second_password"])
        event_record(
            action="second_password.set", actor=user, target=user, request=request
        )


def _second_password_rehash(user: User, raw: str) -> None:
    # Like log-in passwords, move the hash to the current Argon2 costs.
    user.second_password = make_password(raw)
    user.save(update_fields=["second_password"])


def _current_second_password_right(
    user: User, attempt: str, request: HttpRequest | None
) -> bool:
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.second_password_locked_at is not None:
            return False
        if check_password(attempt, locked.second_password):
            return True
        _count_second_factor_failure(locked, request)
    user.second_password_locked_at = locked.second_password_locked_at
    return False


def _second_password_validators() -> list[Any]:
    # The same rules as for passwords, less the history of log-in passwords.
    return [
        validator
        for validator in password_validation.get_default_password_validators()
        if type(validator).__name__ != "PasswordHistoryValidator"
    ]


def second_password_verify(
    *, user: User, attempt: str, request: HttpRequest | None = None
) -> bool:
    """Check the second password alone (the published policy's second factor)."""
    return second_factor_verify(user=user, password=attempt, code=None, request=request)


def second_factor_verify(
    *,
    user: User,
    password: str | None,
    code: str | None,
    request: HttpRequest | None = None,
) -> bool:
    """Check what the policy asks (second password, TOTP code, or both).

    Failures count towards the second factor's own lockout, whichever part
    was wrong; a locked second factor opens nothing until a Controller or
    provider staff unlock it.
    """
    from tmc.identity.totp import totp_check

    policy = policy_for(user.organisation)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.second_password_locked_at is not None:
            return False
        right = True
        if policy.second_password_required:
            right = bool(locked.second_password) and check_password(
                password or "",
                locked.second_password,
                setter=lambda raw: _second_password_rehash(locked, raw),
            )
        if policy.totp_required:
            right = (
                right
                and locked.totp_confirmed_at is not None
                and totp_check(locked, code or "")
            )
        if right:
            locked.second_password_failures = 0
            locked.save(update_fields=["second_password_failures", "totp_last_step"])
            event_record(
                action="second_factor.used", actor=user, target=user, request=request
            )
            return True

        _count_second_factor_failure(locked, request)
    user.second_password_failures = locked.second_password_failures
    user.second_password_locked_at = locked.second_password_locked_at
    return False


def _count_second_factor_failure(locked: User, request: HttpRequest | None) -> None:
    """Count one wrong second factor on a row the caller has locked."""
    policy = policy_for(locked.organisation)
    locked.second_password_failures += 1
    fields = ["second_password_failures"]
    if locked.second_password_failures >= policy.second_password_attempts:
        locked.second_password_locked_at = timezone.now()
        fields.append("second_password_locked_at")
        _locked_notify(
            locked, attempts=locked.second_password_failures, second_factor=True
        )
    locked.save(update_fields=fields)
    event_record(
        action="second_factor.failed",
        actor=locked,
        target=locked,
        details={"attempt": locked.second_password_failures},
        request=request,
    )
    if locked.second_password_locked_at is not None:
        event_record(
            action="second_factor.locked", actor=locked, target=locked, request=request
        )


# --- organisation security settings ------------------------------------------


def organisation_security_update(
    *, actor: User, values: dict[str, int | bool], request: HttpRequest | None = None
) -> None:
    """Store a Controller's stricter values; refuse any looser than in force."""
    from tmc.identity.models import OrganisationSecurity
    from tmc.identity.policy import platform_policy
    from tmc.lib.security_policy import (
        TIGHTER_IS_HIGHER,
        TIGHTER_IS_LOWER,
        TIGHTER_IS_TRUE,
    )

    if actor.role != Role.CONTROLLER:
        raise PermissionDenied("Only a Controller may change security settings.")
    floor = platform_policy()
    errors: dict[str, list[str]] = {}
    for name, value in values.items():
        base = getattr(floor, name)
        if name in TIGHTER_IS_HIGHER and value < base:
            errors[name] = [f"May not be below the platform's {base}."]
        elif name in TIGHTER_IS_LOWER and value > base:
            errors[name] = [f"May not be above the platform's {base}."]
        elif name in TIGHTER_IS_TRUE and base and not value:
            errors[name] = ["The platform requires this."]
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        settings_row, _ = OrganisationSecurity.objects.get_or_create(
            organisation=actor.organisation
        )
        for name, value in values.items():
            setattr(settings_row, name, value)
        settings_row.save()
        event_record(
            action="organisation.security_updated",
            actor=actor,
            target=actor.organisation,
            details={"values": values},
            request=request,
        )
