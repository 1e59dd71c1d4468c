"""The activity log: one append-only stream of who did what, when, from where."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tmc.accounts.models import Organisation, OrganisationScopedQuerySet

PLATFORM_CHAIN = "platform"
# The "previous hash" of a chain's first event.
GENESIS_HASH = "0" * 64


def chain_key(organisation_id: int | None) -> str:
    """The chain an event joins: its organisation's, or the platform's."""
    return PLATFORM_CHAIN if organisation_id is None else f"org:{organisation_id}"


class ActorKind(models.TextChoices):
    """Who acted: a client user, provider staff, an API key or the platform.

    ``anonymous`` is someone not yet known, such as a log-in with an unknown
    username or a password-reset request.
    """

    USER = "user", "User"
    STAFF = "staff", "Staff"
    API_KEY = "api_key", "API key"
    SYSTEM = "system", "System"
    ANONYMOUS = "anonymous", "Anonymous"


class Event(models.Model):
    """Something a person, a key or the system did.

    Written in the same transaction as the change it records, so an action
    that rolls back leaves no event and a committed one always has one.
    Confidential values (full numbers, bodies, passwords, tokens) never go in
    ``details``: ``tmc.audit.services.details_mask`` removes them.

    Each event carries the hash of the one before it in its chain (one chain
    per organisation, one for the platform), and its own hash covers every
    field below except the ``actor`` and ``organisation`` foreign keys, whose
    values ``actor_ref`` and ``chain`` already hold; ``actor`` may become
    null when a user is deleted without breaking the chain.
    """

    chain = models.CharField(max_length=40)
    sequence = models.PositiveBigIntegerField()
    # Every index is one more write on each append, so there are only those
    # the screens need: the two in ``Meta`` lead with these foreign keys and
    # serve their lookups too (the protect check on an organisation, nulling
    # a deleted user), and filters by action or time run inside them.
    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT, db_index=False
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    actor_kind = models.CharField(
        max_length=16, choices=ActorKind.choices, default=ActorKind.SYSTEM
    )
    actor_ref = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=40, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "sequence"], name="audit_event_chain_sequence"
            )
        ]
        indexes = [
            models.Index(fields=["organisation", "-created_at"]),
            models.Index(fields=["actor", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_label}"


class ChainHead(models.Model):
    """The end of one chain: where the next event attaches.

    Appending locks this row (``select_for_update``), which serialises the
    writers of one chain; see ``tmc.audit.services.event_record``. After a
    prune, ``base_sequence`` and ``base_hash`` name the last event removed,
    so the first remaining event still links to something verifiable.
    """

    chain = models.CharField(max_length=40, unique=True)
    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    base_sequence = models.PositiveBigIntegerField(default=0)
    base_hash = models.CharField(max_length=64, default=GENESIS_HASH)

    def __str__(self) -> str:
        return f"{self.chain} at {self.last_sequence}"
