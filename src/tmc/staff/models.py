"""Provider staff, kept apart from client users, and their access to clients."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.staff.levels import Level


class StaffMember(models.Model):
    """A member of the provider's staff; never belongs to an organisation."""

    username = models.CharField(max_length=150, unique=True)
    full_name = models.CharField(max_length=150)
    email = models.EmailField(blank=True)
    level = models.PositiveSmallIntegerField(
        choices=[(level.value, level.label) for level in Level]
    )
    password = models.CharField(max_length=255)
    password_changed_at = models.DateTimeField(default=timezone.now)
    second_password = models.CharField(max_length=255, blank=True)
    is_active = models.BooleanField(default=True)
    failed_login_attempts = models.PositiveSmallIntegerField(default=0)
    locked_at = models.DateTimeField(null=True, blank=True)
    second_password_failures = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["username"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=4),
                name="staff_level_between_1_and_4",
            )
        ]

    def __str__(self) -> str:
        return self.username

    @property
    def label(self) -> str:
        """How the member appears in client activity logs: name and level."""
        return f"{self.full_name} (TMC staff, level {self.level})"

    @property
    def level_label(self) -> str:
        return Level(self.level).label


class StaffPasswordHistory(models.Model):
    member = models.ForeignKey(
        StaffMember, on_delete=models.CASCADE, related_name="password_history"
    )
    password = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Earlier password of staff {self.member_id}"


class StaffSession(models.Model):
    """A signed-in staff browser, found by the hash of its cookie's token.

    Staff sessions use their own cookie, limited to /staff/, so a browser's
    client session and staff session never mix.
    """

    member = models.ForeignKey(
        StaffMember, on_delete=models.CASCADE, related_name="sessions"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    second_factor_done = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_activity_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Staff session {self.pk}"


class StaffAccess(models.Model):
    """A stated reason that opens one organisation's data for a while."""

    member = models.ForeignKey(
        StaffMember, on_delete=models.PROTECT, related_name="accesses"
    )
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="staff_accesses"
    )
    reason = models.CharField(max_length=200)
    opened_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-opened_at"]

    def __str__(self) -> str:
        return f"Access {self.pk} to {self.organisation_id}"

    @property
    def is_open(self) -> bool:
        return self.expires_at > timezone.now()
