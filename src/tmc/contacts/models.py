"""The address book: contacts, groups, the opt-out list and CSV imports.

A contact's number and its details (name, email, custom merge fields) are
confidential: they are stored only sealed with the organisation's data key,
bound to the contact's ``uid``, and found by the number's blind index, which
is also what makes a number appear at most once in an organisation's book.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils.functional import cached_property

from tmc.accounts import encryption
from tmc.accounts.models import OrganisationOwned
from tmc.contacts.rowwork import details_encode

ERASED = "(erased)"


def _open(owner: int | None, sealed: str, context: str) -> str | None:
    """The plaintext, or None once the organisation's keys are destroyed."""
    try:
        return encryption.decrypt(owner, sealed, context=context)
    except encryption.KeyUnavailable:
        return None


class Group(OrganisationOwned):
    """A named list of contacts, such as "Weekend staff"."""

    name = models.CharField(max_length=80)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = [Lower("name").asc()]
        constraints = [
            models.UniqueConstraint(
                "organisation", Lower("name"), name="contact_group_name_unique_per_org"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Contact(OrganisationOwned):
    """One person in an organisation's address book."""

    TABLE = "contacts_contact"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number_sealed = models.TextField()
    number_index = models.CharField(max_length=32)
    # JSON of {"name", "email", "fields"}, sealed as one value.
    details_sealed = models.TextField()
    groups = models.ManyToManyField(Group, related_name="contacts", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "number_index"],
                name="contact_number_unique_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"Contact {self.pk}"

    def seal(
        self, *, number: str, name: str, email: str, fields: dict[str, str]
    ) -> None:
        """Store the number and details encrypted; call before saving."""
        owner = self.organisation_id
        details = details_encode(name=name, email=email, fields=fields)
        self.number_sealed = encryption.encrypt(
            owner, number, context=self.context_for(self.uid, "number")
        )
        self.details_sealed = encryption.encrypt(
            owner, details, context=self.context_for(self.uid, "details")
        )
        self.number_index = encryption.index(owner, number)
        for cached in ("number", "_details"):
            self.__dict__.pop(cached, None)

    @classmethod
    def context_for(cls, uid: uuid.UUID | str, column: str) -> str:
        return encryption.field_context(cls.TABLE, column, uid)

    @cached_property
    def number(self) -> str:
        opened = _open(
            self.organisation_id,
            self.number_sealed,
            self.context_for(self.uid, "number"),
        )
        return ERASED if opened is None else opened

    @cached_property
    def _details(self) -> dict[str, Any]:
        opened = _open(
            self.organisation_id,
            self.details_sealed,
            self.context_for(self.uid, "details"),
        )
        if opened is None:
            return {"name": ERASED, "email": "", "fields": {}}
        decoded: dict[str, Any] = json.loads(opened)
        return decoded

    @property
    def name(self) -> str:
        return str(self._details.get("name", ""))

    @property
    def email(self) -> str:
        return str(self._details.get("email", ""))

    @property
    def fields(self) -> dict[str, str]:
        return dict(self._details.get("fields", {}))

    def merge_values(self) -> dict[str, str]:
        """The values a template's ``{field}`` placeholders can use."""
        values = {"name": self.name, "email": self.email}
        first, _, last = self.name.partition(" ")
        values["first_name"] = first
        values["last_name"] = last
        values.update(self.fields)
        return {key: value for key, value in values.items() if value}


class OptOut(OrganisationOwned):
    """A number that must never be sent to again, until it texts START."""

    TABLE = "contacts_optout"

    class Source(models.TextChoices):
        REPLY = "reply", "Replied STOP"
        MANUAL = "manual", "Added by hand"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number_sealed = models.TextField()
    number_index = models.CharField(max_length=32)
    source = models.CharField(max_length=8, choices=Source.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "number_index"],
                name="optout_number_unique_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"Opt-out {self.pk}"

    def seal(self, *, number: str) -> None:
        self.number_sealed = encryption.encrypt(
            self.organisation_id,
            number,
            context=encryption.field_context(self.TABLE, "number", self.uid),
        )
        self.number_index = encryption.index(self.organisation_id, number)
        self.__dict__.pop("number", None)

    @cached_property
    def number(self) -> str:
        opened = _open(
            self.organisation_id,
            self.number_sealed,
            encryption.field_context(self.TABLE, "number", self.uid),
        )
        return ERASED if opened is None else opened


class ImportJob(OrganisationOwned):
    """One CSV file on its way into the address book.

    The file waits sealed in ``file_sealed`` (in the database, so a worker on
    any machine can read it) and is emptied when the import ends. Rows are
    committed in batches together with ``next_row``, so an import
    cut short (a crash, a restart) resumes where its last batch ended and
    never leaves rows that the job does not count.
    """

    class Status(models.TextChoices):
        MAPPING = "mapping", "Waiting for the columns to be chosen"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(max_length=200)
    file_sealed = models.TextField(blank=True)
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.MAPPING
    )
    headers = models.JSONField(default=list)
    # {"number": column, "name": column, "email": column, "fields": {key: column}}
    mapping = models.JSONField(default=dict)
    group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    region = models.CharField(max_length=2)
    total_rows = models.PositiveIntegerField(default=0)
    next_row = models.PositiveIntegerField(
        default=0, help_text="Data rows already processed, counted from 0."
    )
    created_count = models.PositiveIntegerField(default=0)
    merged_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    opted_out_count = models.PositiveIntegerField(default=0)
    # [[row number in the file, reason], ...]: reasons never quote the value.
    problems = models.JSONField(default=list)
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    TABLE = "contacts_importjob"

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED}

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.is_finished else 0
        return min(100, round(100 * self.next_row / self.total_rows))
