"""Boomerang: virtual numbers, the tickets that match replies, and answers.

A text that expects a reply is sent from a virtual number chosen so that the
pair (recipient, virtual number) names one open ticket; a reply from that
recipient to that number belongs to that ticket, and so to the message, its
author, its question and its organisation.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from tmc.accounts.models import Organisation, OrganisationOwned
from tmc.boomerang.answers import Kind as AnswerKind
from tmc.messaging.models import InboundMessage, Message


class VirtualNumberQuerySet(models.QuerySet["VirtualNumber"]):
    def active(self) -> VirtualNumberQuerySet:
        return self.filter(retired_at__isnull=True)


class VirtualNumber(models.Model):
    """A mobile number of the provider's that texts go out from.

    The shared pool holds numbers without an organisation; a number with one
    is dedicated to it. The number is the provider's own, not client data,
    so it is stored plainly.
    """

    number = models.CharField(max_length=16, unique=True, help_text="E.164")
    organisation = models.ForeignKey(
        Organisation,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Dedicated to this organisation; empty for the shared pool.",
    )
    position = models.PositiveIntegerField(help_text="Order within its pool")
    added_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    objects = VirtualNumberQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.number


QUESTION_KINDS = [
    (AnswerKind.YES_NO.value, "Yes or no"),
    (AnswerKind.CHOICE.value, "Multiple choice"),
    (AnswerKind.NUMBER.value, "A number"),
    (AnswerKind.TEXT.value, "Free text"),
]


class Question(OrganisationOwned):
    """What a text asks, shared by every recipient it went to."""

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    title = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=QUESTION_KINDS)
    options = models.JSONField(default=list, blank=True)
    language = models.CharField(max_length=2, default="en")
    # Follow-ups. An answer value → the text sent back to whoever gives it.
    auto_replies = models.JSONField(default=dict, blank=True)
    # "The first N who answer YES": the value, how many, and the two texts.
    limit_value = models.CharField(max_length=40, blank=True)
    limit_count = models.PositiveIntegerField(null=True, blank=True)
    limit_reply = models.CharField(max_length=918, blank=True)
    over_limit_reply = models.CharField(max_length=918, blank=True)
    # Reminders to those who have not answered after this long.
    reminder_after = models.DurationField(null=True, blank=True)
    reminder_text = models.CharField(max_length=918, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class Ticket(OrganisationOwned):
    """One open conversation between a recipient and a virtual number."""

    class Kind(models.TextChoices):
        SINGLE = "single", "Closed by the first reply"
        DEADLINE = "deadline", "Open until a deadline"
        CONVERSATION = "conversation", "Stays open"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    # Empty only inside the transaction that creates the ticket and then its
    # message (the message's sender is the ticket's number).
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    question = models.ForeignKey(
        Question,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="tickets",
    )
    virtual_number = models.ForeignKey(
        VirtualNumber, on_delete=models.PROTECT, related_name="tickets"
    )
    recipient_route = models.CharField(
        max_length=32, help_text="The platform-wide blind index of the number"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.SINGLE)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    opened_at = models.DateTimeField(default=timezone.now)
    closes_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=40, blank=True)
    # Set once the recipient's answer has had its follow-up, so that it is
    # sent exactly once however many replies arrive.
    followed_up_at = models.DateTimeField(null=True, blank=True)
    # Their place among the question's first N (1 to N), or empty.
    place = models.PositiveIntegerField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        constraints = [
            # The rule that makes a reply's (sender, number) pair name one
            # ticket, held by the database itself so that no race between
            # workers can break it.
            models.UniqueConstraint(
                fields=["virtual_number", "recipient_route"],
                condition=models.Q(status="open"),
                name="boomerang_one_open_ticket_per_pair",
            ),
            # No two people ever hold the same place among the first N.
            models.UniqueConstraint(
                fields=["question", "place"],
                condition=models.Q(place__isnull=False),
                name="boomerang_one_ticket_per_place",
            ),
        ]
        indexes = [models.Index(fields=["recipient_route", "status"])]

    def __str__(self) -> str:
        return f"Ticket {self.pk} ({self.status})"


class Answer(OrganisationOwned):
    """A reply read against its ticket's question."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="answers")
    inbound = models.OneToOneField(
        InboundMessage, on_delete=models.CASCADE, related_name="answer"
    )
    value = models.CharField(max_length=40, blank=True)
    needs_attention = models.BooleanField(default=False)
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"Answer {self.pk} to ticket {self.ticket_id}"


class PoolOptOut(models.Model):
    """A number that texted STOP to the shared pool outside any conversation.

    Nothing is sent to it from the shared pool until it texts START. Kept by
    the platform-wide blind index only: the number itself is not stored.
    """

    number_route = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Pool opt-out {self.pk}"


class ConversationEntry(OrganisationOwned):
    """One text in a ticket's thread: sent by us, or received from them."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="entries")
    message = models.OneToOneField(
        Message,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversation_entry",
    )
    inbound = models.OneToOneField(
        InboundMessage,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="conversation_entry",
    )
    at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(message__isnull=True)
                ^ models.Q(inbound__isnull=True),
                name="boomerang_entry_is_one_text",
            )
        ]
        indexes = [models.Index(fields=["ticket", "read_at"])]

    def __str__(self) -> str:
        return f"Entry {self.pk} of ticket {self.ticket_id}"

    @property
    def is_ours(self) -> bool:
        return self.message_id is not None


class KeywordRule(OrganisationOwned):
    """What a text starting with a keyword to a dedicated number sets off."""

    virtual_number = models.ForeignKey(
        VirtualNumber, on_delete=models.CASCADE, related_name="keyword_rules"
    )
    keyword = models.CharField(max_length=20, help_text="Upper case, one word")
    reply = models.CharField(max_length=918, blank=True)
    group = models.ForeignKey(
        "contacts.Group",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["keyword", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["virtual_number", "keyword"],
                name="boomerang_one_rule_per_keyword",
            )
        ]

    def __str__(self) -> str:
        return self.keyword
