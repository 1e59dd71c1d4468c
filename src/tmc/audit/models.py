"""The activity log: one append-only stream of who did what, when, from where."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tmc.accounts.models import Organisation, OrganisationScopedQuerySet


class Event(models.Model):
    """Something a person, a key or the system did.

    Written in the same transaction as the change it records, so an action
    that rolls back leaves no event and a committed one always has one.
    Confidential values (full numbers, bodies, passwords) never go in
    ``details``.
    """

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"
