"""Client users: who they are, which organisation they belong to, their role."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from tmc.accounts.models import Organisation


class Role(models.TextChoices):
    CONTROLLER = "controller", "Controller"
    ADMINISTRATOR = "administrator", "Administrator"
    USER = "user", "User"


class UserManager(BaseUserManager["User"]):
    def get_by_natural_key(self, username: str | None) -> User:
        # Usernames are unique regardless of case, and people type them in
        # whatever case they remember.
        return self.get(username__iexact=username)

    def create_user(self, username: str, password: str | None, **extra: Any) -> User:
        user = self.model(username=username, **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user


class Permission(models.TextChoices):
    """Restrictions a Controller or Administrator sets on top of the role."""

    CREATE_USERS = "can_create_users", "Create and manage users"
    VIEW_REPORTS = "can_view_reports", "See reports and the activity log"
    VIEW_FULL_NUMBERS = "can_view_full_numbers", "See full mobile numbers"
    EXPORT = "can_export", "Export data"
    SEND_BULK = "can_send_bulk", "Send to many recipients at once"


ROLE_RANK = {Role.USER: 1, Role.ADMINISTRATOR: 2, Role.CONTROLLER: 3}

# What a new user of each role may do until someone restricts them.
ROLE_DEFAULTS: dict[str, frozenset[str]] = {
    Role.CONTROLLER: frozenset(Permission.values),
    Role.ADMINISTRATOR: frozenset(Permission.values),
    Role.USER: frozenset({Permission.SEND_BULK}),
}


class User(AbstractBaseUser):
    """A person who uses an organisation's account.

    Provider staff are not client users and are never stored here.
    """

    username = models.CharField(max_length=150, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField()
    mobile = models.CharField(
        max_length=16, blank=True, help_text="E.164; for alerts to this user."
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.PROTECT, related_name="users"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    can_create_users = models.BooleanField(default=False)
    can_view_reports = models.BooleanField(default=False)
    can_view_full_numbers = models.BooleanField(default=False)
    can_export = models.BooleanField(default=False)
    can_send_bulk = models.BooleanField(default=False)
    daily_message_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Credits a day; empty for no limit."
    )
    monthly_message_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="Credits a month; empty for no limit."
    )

    # Changed only through identity.services, under a row lock.
    failed_login_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    password_changed_at = models.DateTimeField(null=True, blank=True)
    second_password = models.CharField(max_length=255, blank=True)
    second_password_failures = models.PositiveSmallIntegerField(default=0)
    second_password_locked_at = models.DateTimeField(null=True, blank=True)
    # The TOTP shared secret, sealed with a key derived from the master key.
    totp_secret = models.CharField(max_length=200, blank=True)
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last time step accepted, so a code cannot be replayed.
    totp_last_step = models.BigIntegerField(null=True, blank=True)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_unique_ci")
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None

    @property
    def is_manager(self) -> bool:
        """Controllers and Administrators: the roles with control areas."""
        return self.role in {Role.CONTROLLER, Role.ADMINISTRATOR}

    def has_permission(self, permission: Permission | str) -> bool:
        return bool(getattr(self, str(permission)))

    def permissions(self) -> frozenset[str]:
        return frozenset(p for p in Permission.values if self.has_permission(p))


class OrganisationSecurity(models.Model):
    """An organisation's own, stricter, security values; empty means inherit.

    Read through ``tmc.identity.policy.policy_for``, which ignores any value
    looser than the platform's preset.
    """

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="security"
    )
    password_min_length = models.PositiveSmallIntegerField(null=True, blank=True)
    password_require_letters_and_digits = models.BooleanField(null=True, blank=True)
    password_history = models.PositiveSmallIntegerField(null=True, blank=True)
    idle_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    lockout_attempts = models.PositiveSmallIntegerField(null=True, blank=True)
    second_password_required = models.BooleanField(null=True, blank=True)
    second_password_window_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True
    )
    second_password_attempts = models.PositiveSmallIntegerField(null=True, blank=True)
    totp_required = models.BooleanField(null=True, blank=True)
    device_token_days = models.PositiveSmallIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Security settings of {self.organisation}"


class PasswordHistory(models.Model):
    """Hashes of a user's earlier passwords, to refuse their reuse."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="password_history"
    )
    password = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Earlier password of {self.user_id}"


class UserSession(models.Model):
    """One signed-in browser session, so a user can see and end the others.

    ``key`` is our own id, kept in the session data; it survives the session
    id rotating on privilege changes, while ``session_key`` follows it.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    key = models.CharField(max_length=64, unique=True)
    session_key = models.CharField(max_length=40, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    via_device = models.BooleanField(default=False)
    device = models.ForeignKey(
        "RememberedDevice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sessions",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["-last_activity_at"]

    def __str__(self) -> str:
        return f"Session {self.pk} of {self.user_id}"


class RememberedDevice(models.Model):
    """A browser or plug-in allowed to sign a user in without the password.

    Only a SHA-256 of the token is stored; the token itself lives in the
    device's cookie. It never carries the second password.
    """

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="remembered_devices"
    )
    name = models.CharField(max_length=200)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_used_at"]

    def __str__(self) -> str:
        return f"Device {self.pk} of {self.user_id}"
