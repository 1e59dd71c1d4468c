"""The SMPP adapter's correlation of SMSC message ids with our messages.

A message of several parts is several submit_sm, each with its own SMSC id,
so the mapping is kept per part here rather than on the message. Rows are the
work queue between dispatch (which adds them) and the bind worker (which
sends them), and the record an operator reconciles against the SMSC.
"""

from __future__ import annotations

from django.db import models

from tmc.messaging.models import Message


class SmppPart(models.Model):
    """One submit_sm: a part of a message, and what the SMSC said about it."""

    class State(models.TextChoices):
        QUEUED = "queued", "Waiting for the bind"
        SENT = "sent", "Sent, waiting for submit_sm_resp"
        ACCEPTED = "accepted", "Accepted by the SMSC"
        REFUSED = "refused", "Refused by the SMSC"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Not delivered"
        UNANSWERED = "unanswered", "Bind lost before submit_sm_resp: reconcile"
        CANCELLED = "cancelled", "Not sent: another part was refused"

    FINAL_STATES = frozenset({State.REFUSED, State.DELIVERED, State.FAILED})

    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="smpp_parts"
    )
    # The provider whose binds send it: "smpp" (TMC_SMPP_*) or one staff set up.
    gateway = models.CharField(max_length=40, default="smpp")
    sequence = models.PositiveSmallIntegerField(help_text="1 for the first part")
    total = models.PositiveSmallIntegerField()
    reference = models.PositiveSmallIntegerField(
        help_text="The 8-bit concatenation reference shared by the parts"
    )
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    bind = models.CharField(max_length=64, blank=True)
    provider_message_id = models.CharField(max_length=65, blank=True)
    provider_key = models.CharField(max_length=65, blank=True, db_index=True)
    provider_alt_key = models.CharField(max_length=65, blank=True, db_index=True)
    command_status = models.PositiveIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["gateway", "state", "id"])]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "sequence"], name="smpp_part_once_per_message"
            )
        ]

    def __str__(self) -> str:
        return f"Message {self.message_id} part {self.sequence}/{self.total}"


class SmppHeldReceipt(models.Model):
    """A delivery receipt whose id no part carries yet.

    It overtook the submit_sm_resp (on another bind, or before the response
    was stored); it is applied as soon as a response brings its id.
    """

    key = models.CharField(max_length=65, db_index=True)
    state = models.CharField(max_length=12)
    stat = models.CharField(max_length=16, blank=True)
    error = models.CharField(max_length=16, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Held receipt {self.key}"


class SmppBindStatus(models.Model):
    """What a bind worker last said about itself, for the health view.

    Each bind writes its row when it binds, when it loses the bind and every
    few seconds in between; a row that stops changing means the worker has
    stopped.
    """

    class State(models.TextChoices):
        BOUND = "bound", "Bound"
        DOWN = "down", "Not bound"
        STOPPED = "stopped", "Unbound and stopped"

    name = models.CharField(max_length=64, unique=True)
    gateway = models.CharField(max_length=40, db_index=True)
    state = models.CharField(max_length=8, choices=State.choices)
    since = models.DateTimeField()
    window = models.PositiveIntegerField(default=0)
    in_flight = models.PositiveIntegerField(default=0)
    rate = models.FloatField(default=0, help_text="Parts accepted a second, lately")
    accepted = models.PositiveBigIntegerField(default=0)
    refused = models.PositiveBigIntegerField(default=0)
    throttled = models.PositiveBigIntegerField(default=0)
    receipts = models.PositiveBigIntegerField(default=0)
    inbound = models.PositiveBigIntegerField(default=0)
    last_receipt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField()

    class Meta:
        ordering = ["gateway", "name"]

    def __str__(self) -> str:
        return self.name
