"""API keys, and the responses kept to answer a retried request the same way."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property

from tmc.accounts import encryption
from tmc.accounts.models import OrganisationOwned


class Scope(models.TextChoices):
    SEND = "send", "Send messages and questions"
    READ_MESSAGES = "read_messages", "Read sent messages"
    READ_REPLIES = "read_replies", "Read replies"
    MANAGE_CONTACTS = "manage_contacts", "Manage contacts, groups and opt-outs"


class ApiKey(OrganisationOwned):
    """A key a program uses to act as one user of the organisation.

    The key acts with that user's permissions and limits, narrowed by its
    scopes and IP allow-list; it never reaches the control areas. Only an
    HMAC-SHA256 of the key is stored (see ``tmc.api.services.key_digest``),
    under a pepper kept in TMC_HOME, so a lookup is one indexed query and
    the database alone reveals nothing usable. ``prefix`` is the key's
    first characters, public, to tell keys apart in lists.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    # CIDRs; empty means any address.
    allowed_networks = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"API key {self.prefix}… ({self.name})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now: datetime | None = None) -> bool:
        moment = now or timezone.now()
        return self.expires_at is not None and self.expires_at <= moment

    def has_scope(self, scope: Scope | str) -> bool:
        return str(scope) in self.scopes


class IdempotencyRecord(OrganisationOwned):
    """The first response to a POST carrying an ``Idempotency-Key``.

    Unique per user and key: of two requests racing with the same key, the
    second waits on the first one's row and then replays its response. The
    response is sealed with the organisation's data key, as it can name a
    number or a body.
    """

    TABLE = "api_idempotencyrecord"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    key = models.CharField(max_length=255)
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request_digest = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_sealed = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key"], name="api_idempotency_key_unique_per_user"
            )
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"Idempotency record {self.pk}"

    def seal(self, *, response: str) -> None:
        self.response_sealed = encryption.encrypt(
            self.organisation_id, response, context=self._context()
        )
        self.__dict__["response"] = response

    def _context(self) -> str:
        return encryption.field_context(self.TABLE, "response", self.uid)

    @cached_property
    def response(self) -> str:
        return encryption.decrypt(
            self.organisation_id, self.response_sealed, context=self._context()
        )


class EmailOrigin(models.Model):
    """The mailbox a text sent by email came from, so replies go back there.

    ``address`` is the envelope sender of the email, which was either
    authenticated with the user's API key or is the user's registered email.
    """

    message = models.OneToOneField(
        "messaging.Message", on_delete=models.CASCADE, related_name="email_origin"
    )
    address = models.EmailField()
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Email origin of message {self.message_id}"


class WebhookEvent(models.TextChoices):
    MESSAGE_STATUS = "message.status", "Delivery reports"
    REPLY_RECEIVED = "reply.received", "Replies"


class WebhookEndpoint(OrganisationOwned):
    """An HTTPS address of the organisation's that hears about its messages.

    The signing secret is sealed with the organisation's data key. After a
    rotation the old secret keeps signing too, until ``previous_until``, so
    a receiver can switch over without missing a delivery.
    """

    TABLE = "api_webhookendpoint"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    # Full numbers only when asked for and the creator may see them (checked
    # when each event is built, so a withdrawn permission takes effect).
    full_numbers = models.BooleanField(default=False)
    secret_sealed = models.TextField()
    previous_secret_sealed = models.TextField(blank=True, default="")
    previous_until = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Webhook {self.url}"

    def _context(self, column: str) -> str:
        return encryption.field_context(self.TABLE, column, self.uid)

    def secret_seal(self, secret: str) -> None:
        self.secret_sealed = encryption.encrypt(
            self.organisation_id, secret, context=self._context("secret")
        )

    def secrets(self, now: datetime | None = None) -> list[str]:
        """The secrets that sign now: the current one, then any old one."""
        found = [
            encryption.decrypt(
                self.organisation_id,
                self.secret_sealed,
                context=self._context("secret"),
            )
        ]
        moment = now or timezone.now()
        if (
            self.previous_secret_sealed
            and self.previous_until is not None
            and self.previous_until > moment
        ):
            found.append(
                encryption.decrypt(
                    self.organisation_id,
                    self.previous_secret_sealed,
                    context=self._context("previous_secret"),
                )
            )
        return found


class WebhookDelivery(OrganisationOwned):
    """One event for one endpoint, tried until it is accepted or given up.

    The body is built once and sealed (it can carry a full number), so each
    retry sends the same bytes with the same delivery id.
    """

    TABLE = "api_webhookdelivery"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Given up"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    event = models.CharField(max_length=32, choices=WebhookEvent.choices)
    body_sealed = models.TextField()
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"Webhook delivery {self.uid}"

    def _context(self) -> str:
        return encryption.field_context(self.TABLE, "body", self.uid)

    def seal(self, *, body: str) -> None:
        self.body_sealed = encryption.encrypt(
            self.organisation_id, body, context=self._context()
        )
        self.__dict__["body"] = body

    @cached_property
    def body(self) -> str:
        return encryption.decrypt(
            self.organisation_id, self.body_sealed, context=self._context()
        )
