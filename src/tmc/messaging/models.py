"""Outbound messages, the sender identities they leave from, and replies."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.functional import cached_property

from tmc.accounts import encryption
from tmc.accounts.models import (
    Organisation,
    OrganisationOwned,
    OrganisationScopedQuerySet,
)
from tmc.lib.recurrence import Frequency, Recurrence
from tmc.lib.segments import Encoding

ERASED = "(erased)"


def _opened(owner: int | None, sealed: str, context: str) -> str:
    """The plaintext, or ERASED once the organisation's keys are destroyed.

    Any other failure to open (a moved or altered value) is an error.
    """
    try:
        return encryption.decrypt(owner, sealed, context=context)
    except encryption.KeyUnavailable:
        return ERASED


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


class Campaign(OrganisationOwned):
    """One text sent to many recipients at once: a message row for each.

    The body is sealed like a message's, bound to this row's ``uid``. The
    counts of numbers removed before sending are kept, never the numbers.
    Credits for every message are reserved by one ledger debit on creation.
    """

    TABLE = "messaging_campaign"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sender = models.CharField(max_length=16)
    body_sealed = models.TextField()
    encoding = models.CharField(
        max_length=8, choices=[(e.value, e.value) for e in Encoding]
    )
    parts = models.PositiveSmallIntegerField(help_text="Parts of each message.")
    recipient_count = models.PositiveIntegerField()
    invalid_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    opted_out_count = models.PositiveIntegerField(default=0)
    credits_reserved = models.PositiveIntegerField()
    free_parts = models.PositiveIntegerField(default=0, db_default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Accepted in the organisation's quiet hours: the dispatchers leave it
    # until then, and a periodic task starts them.
    hold_until = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"Campaign {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.CANCELLED}

    def seal(self, *, body: str) -> None:
        """Store the body encrypted; call before saving."""
        self.body_sealed = encryption.encrypt(
            self.organisation_id, body, context=self._context("body")
        )
        self.__dict__["body"] = body

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    @cached_property
    def body(self) -> str:
        return _opened(self.organisation_id, self.body_sealed, self._context("body"))


class Message(OrganisationOwned):
    """One text to one recipient, from composition to its delivery report.

    The recipient's number and the body are confidential: they are stored
    only sealed with the organisation's data key (``seal``), bound to this
    row's ``uid``, and found by blind index: ``recipient_index`` within the
    organisation, ``recipient_route`` across the platform (to route replies).
    """

    TABLE = "messaging_message"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SUBMITTING = "submitting", "Submitting"
        RETRYING = "retrying", "Waiting to retry"
        SUBMITTED = "submitted", "Submitted"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"
        # Withdrawn unsent with its cancelled campaign, and refunded.
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATUSES = frozenset(
        {Status.DELIVERED, Status.FAILED, Status.EXPIRED, Status.CANCELLED}
    )
    # Not yet taken by a gateway: still paid for by a reservation that a
    # failure or expiry refunds.
    UNSENT_STATUSES = frozenset({Status.QUEUED, Status.SUBMITTING, Status.RETRYING})

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Indexed together with the status below, for the dispatchers' claims.
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="messages",
        db_index=False,
    )
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sender = models.CharField(max_length=16)
    recipient_sealed = models.TextField()
    recipient_index = models.CharField(max_length=32, db_index=True)
    recipient_route = models.CharField(max_length=32, db_index=True)
    body_sealed = models.TextField()
    encoding = models.CharField(
        max_length=8, choices=[(e.value, e.value) for e in Encoding]
    )
    parts = models.PositiveSmallIntegerField()
    credits = models.PositiveIntegerField()
    # Parts paid for by the package's monthly allowance rather than credits.
    free_parts = models.PositiveSmallIntegerField(default=0, db_default=0)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    gateway = models.CharField(max_length=40, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True)
    failure_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Passes over the route that ended in temporary errors, and when the
    # next one is due (RETRYING).
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Not submitted by then, it is EXPIRED and refunded. None: never.
    expires_at = models.DateTimeField(null=True, blank=True)
    # When a worker claimed it (SUBMITTING): the reconciler's clock.
    submitting_since = models.DateTimeField(null=True, blank=True)
    # A one-to-one text sent in the organisation's quiet hours stays QUEUED
    # and unclaimed until then (scheduling.messages_release_held).
    hold_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organisation", "-created_at"]),
            models.Index(fields=["campaign", "status"]),
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["status", "submitting_since"]),
            models.Index(
                fields=["hold_until"],
                condition=models.Q(hold_until__isnull=False),
                name="message_held_until",
            ),
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

    def seal(self, *, recipient: str, body: str) -> None:
        """Store the number and body encrypted; call before saving."""
        owner = self.organisation_id
        self.recipient_sealed = encryption.encrypt(
            owner, recipient, context=self._context("recipient")
        )
        self.body_sealed = encryption.encrypt(
            owner, body, context=self._context("body")
        )
        self.recipient_index = encryption.index(owner, recipient)
        self.recipient_route = encryption.index(None, recipient)
        self.__dict__["recipient"] = recipient
        self.__dict__["body"] = body

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    @cached_property
    def recipient(self) -> str:
        return _opened(
            self.organisation_id, self.recipient_sealed, self._context("recipient")
        )

    @cached_property
    def body(self) -> str:
        return _opened(self.organisation_id, self.body_sealed, self._context("body"))


class InboundMessage(models.Model):
    """A text received from a handset, matched to an organisation if possible.

    Replies that match no organisation are kept with none rather than dropped.
    """

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.PROTECT
    )
    TABLE = "messaging_inboundmessage"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    gateway = models.CharField(max_length=40)
    sender_sealed = models.TextField(help_text="The handset's number, sealed")
    sender_route = models.CharField(max_length=32, db_index=True)
    recipient = models.CharField(max_length=16, help_text="Our number it was sent to")
    body_sealed = models.TextField()
    in_reply_to = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    received_at = models.DateTimeField(auto_now_add=True)
    # Empty while the text waits to be matched to its conversation: a
    # gateway's text is stored first and acknowledged at once, and matched
    # with others in a batch (``gateways.inbound``).
    matched_at = models.DateTimeField(null=True, blank=True)

    objects = OrganisationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(matched_at__isnull=True),
                name="messaging_inbound_pending",
            )
        ]

    def __str__(self) -> str:
        return f"Inbound {self.pk}"

    def seal(self, *, sender: str, body: str) -> None:
        """Seal with the organisation's key, or the platform's if none yet."""
        owner = self.organisation_id
        self.sender_sealed = encryption.encrypt(
            owner, sender, context=self._context("sender")
        )
        self.body_sealed = encryption.encrypt(
            owner, body, context=self._context("body")
        )
        self.sender_route = encryption.index(None, sender)
        self.__dict__["sender"] = sender
        self.__dict__["body"] = body

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    @cached_property
    def sender(self) -> str:
        return _opened(
            self.organisation_id, self.sender_sealed, self._context("sender")
        )

    @cached_property
    def body(self) -> str:
        return _opened(self.organisation_id, self.body_sealed, self._context("body"))


class MessageTemplate(OrganisationOwned):
    """A message body kept to send again, shared by the organisation's users.

    The body may hold merge fields (``{first_name}``, see ``tmc.lib.merge``).
    It is as confidential as a message's and stored only sealed with the
    organisation's data key, bound to this row's ``uid``; the name is a
    label, like a group's, and stays readable for lists and ordering.
    """

    TABLE = "messaging_messagetemplate"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=80)
    body_sealed = models.TextField()
    # A template outlives the person who wrote it.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name").asc(), "id"]
        constraints = [
            models.UniqueConstraint(
                "organisation",
                Lower("name"),
                name="message_template_name_unique_per_org",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def seal(self, *, body: str) -> None:
        """Store the body encrypted; call before saving."""
        self.body_sealed = encryption.encrypt(
            self.organisation_id, body, context=self._context("body")
        )
        self.__dict__["body"] = body

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    @cached_property
    def body(self) -> str:
        return _opened(self.organisation_id, self.body_sealed, self._context("body"))


class Schedule(OrganisationOwned):
    """A send to come: once at ``run_at``, or repeating by a local-time rule.

    What to send is what a campaign takes (typed numbers, groups, sender,
    body) or one recipient (``single``, the number in ``numbers``). The
    body and the numbers are sealed like a campaign's, bound to ``uid``.
    ``next_run_at`` is the next occurrence, already moved out of quiet hours;
    None once nothing more will run. Each occurrence sends as ``created_by``,
    so credits, opt-outs and limits are checked when it runs.
    """

    TABLE = "messaging_schedule"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    class Repeat(models.TextChoices):
        ONCE = "once", "Once"
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    ACTIVE = (Status.SCHEDULED, Status.RUNNING)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    single = models.BooleanField(default=False)
    numbers_sealed = models.TextField(blank=True)
    group_ids = models.JSONField(default=list, blank=True)
    sender = models.CharField(max_length=16, blank=True)
    body_sealed = models.TextField()

    repeat = models.CharField(max_length=8, choices=Repeat.choices)
    run_at = models.DateTimeField(null=True, blank=True)
    time_of_day = models.TimeField(null=True, blank=True)
    # 0 (Monday) to 6, for weekly.
    weekdays = models.JSONField(default=list, blank=True)
    day_of_month = models.PositiveSmallIntegerField(null=True, blank=True)
    ends_on = models.DateField(null=True, blank=True)

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.SCHEDULED
    )
    next_run_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["next_run_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_run_at"]),
            models.Index(fields=["organisation", "status"]),
        ]

    def __str__(self) -> str:
        return f"Schedule {self.pk} ({self.status})"

    @property
    def recurrence(self) -> Recurrence | None:
        if self.repeat == self.Repeat.ONCE:
            return None
        assert self.time_of_day is not None
        return Recurrence(
            Frequency(self.repeat),
            self.time_of_day,
            weekdays=frozenset(self.weekdays),
            day_of_month=self.day_of_month,
            until=self.ends_on,
        )

    @property
    def is_changeable(self) -> bool:
        """Edits are allowed until the first occurrence starts."""
        return self.status == self.Status.SCHEDULED

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def seal(self, *, numbers: str, body: str) -> None:
        """Store the numbers and the body encrypted; call before saving."""
        owner = self.organisation_id
        self.numbers_sealed = encryption.encrypt(
            owner, numbers, context=self._context("numbers")
        )
        self.body_sealed = encryption.encrypt(
            owner, body, context=self._context("body")
        )
        self.__dict__["numbers"] = numbers
        self.__dict__["body"] = body

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    @cached_property
    def numbers(self) -> str:
        if not self.numbers_sealed:
            return ""
        return _opened(
            self.organisation_id, self.numbers_sealed, self._context("numbers")
        )

    @cached_property
    def body(self) -> str:
        return _opened(self.organisation_id, self.body_sealed, self._context("body"))


class ScheduleRun(OrganisationOwned):
    """One occurrence of a schedule: when it was due, and what came of it.

    Created in the transaction that claims the occurrence, as PENDING; a run
    left PENDING means the worker stopped while sending. ``reason`` is the
    refusal shown to people (never a body or a number).
    """

    class Outcome(models.TextChoices):
        PENDING = "pending", "Sending"
        SENT = "sent", "Sent"
        REFUSED = "refused", "Not sent"

    schedule = models.ForeignKey(
        Schedule, on_delete=models.CASCADE, related_name="runs"
    )
    due_at = models.DateTimeField()
    started_at = models.DateTimeField()
    outcome = models.CharField(
        max_length=8, choices=Outcome.choices, default=Outcome.PENDING
    )
    reason = models.CharField(max_length=300, blank=True)
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-due_at", "-id"]
        constraints = [
            # The claim already makes one worker the runner of an
            # occurrence; this makes a second row for it impossible anyway.
            models.UniqueConstraint(
                fields=["schedule", "due_at"], name="schedule_run_once_per_due_time"
            )
        ]

    def __str__(self) -> str:
        return f"Run {self.pk} of schedule {self.schedule_id} ({self.outcome})"


class VerifiedNumber(OrganisationOwned):
    """A number a trial organisation has proved it owns, or is proving.

    The number is sealed like a contact's and found by its blind index; the
    code texted to it is kept only as a hash. ``verified_at`` is set once
    the right code is entered; ``attempts`` counts wrong ones.
    """

    TABLE = "messaging_verifiednumber"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number_sealed = models.TextField()
    number_index = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=128, blank=True)
    code_sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "number_index"],
                name="verified_number_unique_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"Verified number {self.pk}"

    def seal(self, *, number: str) -> None:
        """Store the number encrypted, with its blind index; call before saving."""
        owner = self.organisation_id
        self.number_sealed = encryption.encrypt(
            owner, number, context=self._context("number")
        )
        self.number_index = encryption.index(owner, number)
        self.__dict__["number"] = number

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    @cached_property
    def number(self) -> str:
        return _opened(
            self.organisation_id, self.number_sealed, self._context("number")
        )

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None
