"""Gateway providers, configured by staff.

A provider row names an adapter kind and its settings; routes name providers
by ``name``. Its credentials (passwords, API secrets, callback secrets) are
one JSON object sealed with a key derived from the master key and bound to
the row's ``uid``: a copied ciphertext opens on no other row, and nothing
on a page or in the activity log ever shows them again.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class GatewayProvider(models.Model):
    class Kind(models.TextChoices):
        SMPP = "smpp", "SMPP 3.4"
        HTTP = "http", "Generic JSON over HTTP"
        VONAGE = "vonage", "Vonage SMS API"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.SlugField(
        max_length=40,
        unique=True,
        help_text="How routes name this provider; letters, digits and dashes.",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    throughput = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(100_000)],
        help_text="Messages a second the contract allows, across every worker.",
    )
    # Settings that are not secret: host, port, URL, window, field names...
    settings = models.JSONField(default=dict, blank=True)
    # The secrets, sealed as one JSON object (see gateways.providers).
    credentials = models.TextField(blank=True)
    credentials_changed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def setting(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)


class InboundPart(models.Model):
    """One part of a concatenated text from a handset, until all have come.

    Kept in the database, not in a bind's memory, so a restart between the
    parts loses nothing: the SMSC is told it has been given a part only once
    the part is stored here. The text is sealed under the master key (its
    organisation is not known until the whole text is read); ``group`` is a
    keyed hash of the provider, both numbers, the reference and the count,
    so the parts find each other without the numbers being readable.
    """

    group = models.CharField(max_length=64)
    sequence = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sealed_text = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["group", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "sequence"], name="inbound_part_once"
            )
        ]

    def __str__(self) -> str:
        return f"Inbound part {self.sequence}/{self.total}"
