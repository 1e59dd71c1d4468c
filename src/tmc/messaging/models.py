"""Outbound messages, the sender identities they leave from, and replies."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tmc.accounts.models import (
    Organisation,
    OrganisationOwned,
    OrganisationScopedQuerySet,
)
from tmc.lib.segments import Encoding


class SenderId(OrganisationOwned):
    """A name or number an organisation may send from, once approved."""

    value = models.CharField(
        max_length=16,
        help_text="An alphanumeric name of up to 11 characters, or a number.",
    )
    is_approved = models.BooleanField(default=False)
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "value"], name="sender_id_unique_per_org"
            )
        ]
        ordering = ["-is_default", "value"]

    def __str__(self) -> str:
        return self.value


class Message(OrganisationOwned):
    """One text to one recipient, from composition to its delivery report."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SUBMITTING = "submitting", "Submitting"
        SUBMITTED = "submitted", "Submitted"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    FINAL_STATUSES = frozenset({Status.DELIVERED, Status.FAILED})

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    sender = models.CharField(max_length=16)
    recipient = models.CharField(max_length=16, help_text="E.164")
    body = models.TextField()
    encoding = models.CharField(
        max_length=8, choices=[(e.value, e.value) for e in Encoding]
    )
    parts = models.PositiveSmallIntegerField()
    credits = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    gateway = models.CharField(max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="message_provider_id_unique_per_gateway",
            )
        ]

    def __str__(self) -> str:
        return f"Message {self.pk} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class InboundMessage(models.Model):
    """A text received from a handset, matched to an organisation if possible.

    Replies that match no organisation are kept with none rather than dropped.
    """

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT
    )
    gateway = models.CharField(max_length=40)
    sender = models.CharField(max_length=16, help_text="E.164 of the handset")
    recipient = models.CharField(max_length=16, help_text="Our number it was sent to")
    body = models.TextField()
    in_reply_to = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"Inbound {self.pk}"
