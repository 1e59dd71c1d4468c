"""Business rules of the address book: contacts, groups, opt-outs, export.

Numbers are normalised to E.164 in the organisation's default region and
looked up only through their blind index. Every change is recorded in the
activity log in the same transaction, by ids and field names: the log never
holds a name, an email or a number.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from tmc.accounts import encryption
from tmc.accounts.models import Organisation
from tmc.audit.services import event_record
from tmc.contacts.models import Contact, Group, OptOut
from tmc.contacts.rowwork import FIELD_VALUE_MAX, NAME_MAX
from tmc.identity.models import Permission, User
from tmc.lib.phone import InvalidNumber, format_international, mask_number
from tmc.lib.phone import normalise_mobile as _normalise
from tmc.lib.spreadsheet import csv_cell

logger = logging.getLogger(__name__)

FIELD_KEY = re.compile(r"\A[a-z][a-z0-9_]{0,31}\Z")
# Keys a contact always offers to templates; custom fields cannot take them.
RESERVED_KEYS = frozenset({"name", "email", "number", "first_name", "last_name"})
STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE"})
START_WORDS = frozenset({"START", "UNSTOP"})


# --- numbers and details -------------------------------------------------------


def normalise_number(organisation: Organisation, raw: str) -> str:
    return _normalise(raw, organisation.default_region)


def number_shown(e164: str, user: User) -> str:
    """The full number for users allowed to see it, masked for everyone else."""
    if user.has_permission(Permission.VIEW_FULL_NUMBERS):
        return format_international(e164)
    return mask_number(e164)


def field_key_check(key: str) -> str | None:
    """Why ``key`` cannot name a custom field, or None when it can."""
    if not FIELD_KEY.match(key):
        return (
            f"{key!r} cannot name a field: use lower-case letters, digits and "
            "underscores, starting with a letter (at most 32)."
        )
    if key in RESERVED_KEYS:
        return f"{key!r} is already a standard field."
    return None


def field_key_from_header(header: str) -> str:
    """A custom field's key made from a CSV column's header: "Shift day" → shift_day."""
    words = re.findall(r"[a-z0-9]+", header.lower())
    key = "_".join(words)[:32]
    if key and key[0] in string.digits:
        key = f"f_{key}"[:32]
    return key


@dataclass
class ContactDetails:
    """What a person types about a contact, checked by ``details_check``."""

    name: str = ""
    email: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def details_check(details: ContactDetails) -> dict[str, str]:
    """Field errors for ``details`` (empty when they are fine)."""
    errors: dict[str, str] = {}
    if len(details.name) > NAME_MAX:
        errors["name"] = f"The name is longer than {NAME_MAX} characters."
    if details.email:
        try:
            validate_email(details.email)
        except ValidationError:
            errors["email"] = "Enter a valid email address, or leave it empty."
    for key, value in details.fields.items():
        problem = field_key_check(key)
        if problem:
            errors["fields"] = problem
        elif len(value) > FIELD_VALUE_MAX:
            errors["fields"] = (
                f"The value of {key!r} is longer than {FIELD_VALUE_MAX} characters."
            )
    return errors


# --- contacts ------------------------------------------------------------------


def contacts_for(user: User) -> QuerySet[Contact]:
    return Contact.objects.for_user(user)


def contact_find(user: User, raw_number: str) -> Contact | None:
    """The contact with this number in the user's organisation, if any."""
    number = normalise_number(user.organisation, raw_number)
    index = encryption.index(user.organisation_id, number)
    return contacts_for(user).filter(number_index=index).first()


def _groups_of(user: User, group_ids: Iterable[int]) -> list[Group]:
    wanted = set(group_ids)
    groups = list(Group.objects.for_user(user).filter(pk__in=wanted))
    if len(groups) != len(wanted):
        raise ValidationError({"groups": "Choose groups of this organisation."})
    return groups


def contact_create(
    *,
    user: User,
    number: str,
    details: ContactDetails,
    group_ids: Iterable[int] = (),
    request: HttpRequest | None = None,
) -> Contact:
    """Add one contact; a number already in the book is refused, not doubled."""
    errors = details_check(details)
    normalised = ""
    try:
        normalised = normalise_number(user.organisation, number)
    except InvalidNumber as exc:
        errors["number"] = str(exc)
    if errors:
        raise ValidationError(errors)
    groups = _groups_of(user, group_ids)

    contact = Contact(organisation=user.organisation)
    contact.seal(
        number=normalised,
        name=details.name,
        email=details.email,
        fields=details.fields,
    )
    try:
        with transaction.atomic():
            contact.save()
            contact.groups.set(groups)
            event_record(
                action="contact.created",
                actor=user,
                target=contact,
                details={"groups": sorted(g.pk for g in groups)},
                request=request,
            )
    except IntegrityError as exc:
        # The unique blind index: the number is in the book already.
        raise ValidationError(
            {"number": "This number is already in the address book."}
        ) from exc
    logger.info(
        "contact created id=%s organisation_id=%s", contact.pk, contact.organisation_id
    )
    return contact


def contact_update(
    *,
    user: User,
    contact: Contact,
    details: ContactDetails,
    number: str = "",
    group_ids: Iterable[int] = (),
    request: HttpRequest | None = None,
) -> Contact:
    """Change a contact; an empty ``number`` keeps the one it has.

    The activity log names the fields that changed, never their values.
    """
    assert contact.organisation_id == user.organisation_id
    errors = details_check(details)
    new_number = contact.number
    if number.strip():
        try:
            new_number = normalise_number(user.organisation, number)
        except InvalidNumber as exc:
            errors["number"] = str(exc)
    if errors:
        raise ValidationError(errors)
    groups = _groups_of(user, group_ids)

    changed = [
        name
        for name, before, after in (
            ("number", contact.number, new_number),
            ("name", contact.name, details.name),
            ("email", contact.email, details.email),
            ("fields", contact.fields, details.fields),
        )
        if before != after
    ]
    before_groups = set(contact.groups.values_list("pk", flat=True))
    after_groups = {g.pk for g in groups}
    if before_groups != after_groups:
        changed.append("groups")
    if not changed:
        return contact

    contact.seal(
        number=new_number,
        name=details.name,
        email=details.email,
        fields=details.fields,
    )
    try:
        with transaction.atomic():
            contact.save()
            contact.groups.set(groups)
            event_record(
                action="contact.updated",
                actor=user,
                target=contact,
                details={"changed": changed},
                request=request,
            )
    except IntegrityError as exc:
        raise ValidationError(
            {"number": "Another contact already has this number."}
        ) from exc
    return contact


def contact_delete(
    *, user: User, contact: Contact, request: HttpRequest | None = None
) -> None:
    assert contact.organisation_id == user.organisation_id
    with transaction.atomic():
        event_record(
            action="contact.deleted", actor=user, target=contact, request=request
        )
        contact.delete()


# --- groups --------------------------------------------------------------------


def _group_name_check(user: User, name: str, *, other_than: Group | None) -> str:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Name the group."})
    if len(name) > 80:
        raise ValidationError({"name": "The name is longer than 80 characters."})
    taken = Group.objects.for_user(user).filter(name__iexact=name)
    if other_than is not None:
        taken = taken.exclude(pk=other_than.pk)
    if taken.exists():
        raise ValidationError({"name": "There is a group with this name already."})
    return name


def group_create(
    *,
    user: User,
    name: str,
    description: str = "",
    request: HttpRequest | None = None,
) -> Group:
    name = _group_name_check(user, name, other_than=None)
    with transaction.atomic():
        group = Group.objects.create(
            organisation=user.organisation,
            name=name,
            description=description.strip()[:200],
        )
        event_record(
            action="group.created",
            actor=user,
            target=group,
            details={"name": group.name},
            request=request,
        )
    return group


def group_update(
    *,
    user: User,
    group: Group,
    name: str,
    description: str = "",
    request: HttpRequest | None = None,
) -> Group:
    assert group.organisation_id == user.organisation_id
    name = _group_name_check(user, name, other_than=group)
    before = {"name": group.name, "description": group.description}
    group.name, group.description = name, description.strip()[:200]
    after = {"name": group.name, "description": group.description}
    changes = {
        key: {"before": before[key], "after": after[key]}
        for key in before
        if before[key] != after[key]
    }
    if changes:
        with transaction.atomic():
            group.save(update_fields=["name", "description"])
            event_record(
                action="group.updated",
                actor=user,
                target=group,
                details={"changes": changes},
                request=request,
            )
    return group


def group_delete(
    *, user: User, group: Group, request: HttpRequest | None = None
) -> None:
    """Remove the group; its contacts stay in the address book."""
    assert group.organisation_id == user.organisation_id
    with transaction.atomic():
        event_record(
            action="group.deleted",
            actor=user,
            target=group,
            details={"name": group.name, "members": group.contacts.count()},
            request=request,
        )
        group.delete()


# --- the opt-out list ----------------------------------------------------------


def reply_keyword(body: str) -> str | None:
    """ "stop" or "start" when a whole reply is one of those keywords.

    Case, spaces and punctuation do not matter ("Stop.", " STOP!"), but a
    keyword inside a sentence ("don't stop") is an ordinary reply.
    """
    word = re.sub(r"[\W_]+", "", body).upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def opted_out(organisation: Organisation, e164: str) -> bool:
    index = encryption.index(organisation.pk, e164)
    return (
        OptOut.objects.for_organisation(organisation)
        .filter(number_index=index)
        .exists()
    )


def opted_out_indexes(organisation: Organisation, indexes: Iterable[str]) -> set[str]:
    """Which of these blind indexes are on the organisation's opt-out list."""
    return set(
        OptOut.objects.for_organisation(organisation)
        .filter(number_index__in=list(indexes))
        .values_list("number_index", flat=True)
    )


def opt_out_add(
    *,
    organisation: Organisation,
    number: str,
    source: OptOut.Source,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> OptOut:
    """Put an E.164 number on the list (again: a no-op) and log it."""
    index = encryption.index(organisation.pk, number)
    with transaction.atomic():
        existing = OptOut.objects.filter(
            organisation=organisation, number_index=index
        ).first()
        if existing is not None:
            return existing
        opt_out = OptOut(organisation=organisation, source=source, created_by=actor)
        opt_out.seal(number=number)
        opt_out.save()
        event_record(
            action="optout.added",
            organisation=organisation,
            actor=actor,
            target=opt_out,
            details={"source": source.value, "number": number},
            request=request,
        )
    logger.info(
        "opt-out added id=%s organisation_id=%s source=%s",
        opt_out.pk,
        organisation.pk,
        source.value,
    )
    return opt_out


def opt_out_add_by_user(
    *, user: User, number: str, request: HttpRequest | None = None
) -> OptOut:
    try:
        normalised = normalise_number(user.organisation, number)
    except InvalidNumber as exc:
        raise ValidationError({"number": str(exc)}) from exc
    return opt_out_add(
        organisation=user.organisation,
        number=normalised,
        source=OptOut.Source.MANUAL,
        actor=user,
        request=request,
    )


def opt_out_lift_on_start(*, organisation: Organisation, number: str) -> bool:
    """The number texted START: it may be sent to again. Only this lifts it."""
    index = encryption.index(organisation.pk, number)
    with transaction.atomic():
        opt_out = OptOut.objects.filter(
            organisation=organisation, number_index=index
        ).first()
        if opt_out is None:
            return False
        event_record(
            action="optout.lifted",
            organisation=organisation,
            target=opt_out,
            details={"source": "reply", "number": number},
        )
        opt_out.delete()
    logger.info("opt-out lifted organisation_id=%s", organisation.pk)
    return True


def reply_keyword_apply(
    *, organisation: Organisation, sender: str, body: str
) -> str | None:
    """Act on a STOP or START reply before anything else sees it."""
    keyword = reply_keyword(body)
    if keyword == "stop":
        opt_out_add(
            organisation=organisation, number=sender, source=OptOut.Source.REPLY
        )
    elif keyword == "start":
        opt_out_lift_on_start(organisation=organisation, number=sender)
    return keyword


# --- export --------------------------------------------------------------------

EXPORT_COLUMNS = ("name", "number", "email", "groups")


def contacts_export(
    *, user: User, group: Group | None = None, request: HttpRequest | None = None
) -> Iterator[list[str]]:
    """Record the export, then give the rows of a CSV of the address book.

    Numbers are masked for users without the full-numbers permission, and
    every cell that a spreadsheet would run as a formula is defused.
    """
    if not user.has_permission(Permission.EXPORT):
        raise PermissionDenied("Your permissions do not include exporting.")
    contacts = contacts_for(user)
    if group is not None:
        assert group.organisation_id == user.organisation_id
        contacts = contacts.filter(groups=group)
    count = contacts.count()
    event_record(
        action="contacts.exported",
        actor=user,
        target=group or user.organisation,
        details={
            "contacts": count,
            "group": group.pk if group else None,
            "full_numbers": user.has_permission(Permission.VIEW_FULL_NUMBERS),
        },
        request=request,
    )
    logger.info(
        "contacts exported organisation_id=%s user_id=%s count=%s",
        user.organisation_id,
        user.pk,
        count,
    )
    return _export_rows(user, contacts.order_by("pk"))


def _export_rows(user: User, contacts: QuerySet[Contact]) -> Iterator[list[str]]:
    # Two passes keep memory flat: one to learn the custom columns, one to
    # write the rows.
    keys: set[str] = set()
    for contact in contacts.iterator(chunk_size=2000):
        keys.update(contact.fields)
    custom = sorted(keys)
    yield [*EXPORT_COLUMNS, *custom]
    for contact in contacts.prefetch_related("groups").iterator(chunk_size=2000):
        fields = contact.fields
        row = [
            contact.name,
            number_shown(contact.number, user),
            contact.email,
            "; ".join(g.name for g in contact.groups.all()),
            *(fields.get(key, "") for key in custom),
        ]
        yield [csv_cell(value) for value in row]
