"""The simulator's own state: virtual handsets and what they received.

This is the provider's side of the wire, kept apart from the platform's
tables as a real provider's would be.
"""

from __future__ import annotations

from django.db import models


class SimulatedHandset(models.Model):
    """A virtual phone that receives texts and can reply."""

    class Outcome(models.TextChoices):
        DELIVER = "deliver", "Deliver"
        FAIL = "fail", "Fail (handset unreachable)"
        SILENT = "silent", "Never report"
        RANDOM = "random", "Use the configured failure rate"
        REJECT = "reject", "Refuse at submission (number barred)"

    number = models.CharField(max_length=16, unique=True, help_text="E.164")
    outcome = models.CharField(
        max_length=8, choices=Outcome.choices, default=Outcome.RANDOM
    )

    def __str__(self) -> str:
        return self.number


class SimulatedDelivery(models.Model):
    """A submission the simulator accepted, and what became of it."""

    provider_message_id = models.CharField(max_length=64, unique=True)
    # Which simulator instance took it, and the platform's id for it: what a
    # provider's own record holds, for ``lookup`` (reconciliation).
    gateway = models.CharField(max_length=40, default="simulator")
    message_id = models.BigIntegerField(null=True, blank=True)
    handset = models.ForeignKey(
        SimulatedHandset, on_delete=models.CASCADE, related_name="deliveries"
    )
    sender = models.CharField(max_length=16)
    body = models.TextField()
    parts = models.PositiveSmallIntegerField()
    accepted_at = models.DateTimeField(auto_now_add=True)
    reported_state = models.CharField(max_length=16, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-accepted_at", "-id"]
        indexes = [models.Index(fields=["gateway", "message_id"])]

    def __str__(self) -> str:
        return self.provider_message_id
