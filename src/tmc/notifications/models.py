from __future__ import annotations

from django.db import models

from tmc.accounts.models import Organisation, OrganisationOwned
from tmc.identity.models import User
from tmc.notifications.catalogue import Kind


class Notification(OrganisationOwned):
    """One notice in one person's in-app list; the bell counts the unread."""

    recipient = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    title = models.CharField(max_length=200)
    link = models.CharField(max_length=300, blank=True)
    # Whether the recipient asked for a desktop pop-up for this kind when it
    # was created; the browser shows it on its next poll.
    desktop = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["recipient", "read_at"], name="notification_unread_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for user {self.recipient_id}"


class Preference(models.Model):
    """One person's channels for one kind of notice, once they have chosen."""

    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)
    desktop = models.BooleanField(default=False)
    # Emails gathered into one each hour instead of one each.
    email_digest = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "kind"], name="notification_preference_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} preference of user {self.user_id}"


class LowCreditAlert(models.Model):
    """When an organisation's Controllers hear that credit is running out.

    ``alerted_at`` is set when the balance falls below the threshold and
    cleared when it rises above again, so one fall sends one notice.
    """

    organisation = models.OneToOneField(
        Organisation, on_delete=models.CASCADE, related_name="low_credit_alert"
    )
    threshold = models.PositiveIntegerField()
    alerted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"low-credit alert at {self.threshold} for {self.organisation_id}"


class DigestItem(models.Model):
    """A notice waiting for its recipient's next hourly digest email."""

    recipient = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="digest_items"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    title = models.CharField(max_length=200)
    link = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["sent_at", "recipient"])]

    def __str__(self) -> str:
        return f"{self.kind} digest item for user {self.recipient_id}"
