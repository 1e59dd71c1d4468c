"""The address book: contacts, groups and the opt-out list."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema, Status
from pydantic import Field

from tmc.accounts.scoping import get_for_user_or_404
from tmc.api.auth import acting_user, number_for
from tmc.api.endpoints.messages import IDEMPOTENCY_HEADER, READ_ERRORS, WRITE_ERRORS
from tmc.api.errors import ApiError, from_validation_error, query_check
from tmc.api.idempotency import idempotent
from tmc.api.models import Scope
from tmc.api.schemas import Id
from tmc.contacts.models import Contact, Group, OptOut
from tmc.contacts.services import (
    ContactDetails,
    contact_create,
    contact_delete,
    contact_find,
    contact_update,
    group_create,
    group_delete,
    group_update,
    opt_out_add_by_user,
)
from tmc.identity.models import User
from tmc.lib.phone import InvalidNumber

router = Router(tags=["contacts"])

FIELD_NAMES = {"groups": "group_ids"}
BULK_MAX = 1000
ID_MAX = 2**63 - 1


def refused(exc: ValidationError) -> ApiError:
    error = from_validation_error(exc)
    if error.field is not None:
        error.field = FIELD_NAMES.get(error.field, error.field)
    return error


class ContactIn(Schema):
    number: str = Field(
        max_length=64,
        description="The contact's mobile number.",
        examples=["+447700900123"],
    )
    name: str = Field(
        default="", max_length=200, description="Their name.", examples=["Ann Lee"]
    )
    email: str = Field(
        default="",
        max_length=254,
        description="Their email.",
        examples=["ann@example.com"],
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Custom fields, used as merge fields in texts.",
        examples=[{"first_name": "Ann", "team": "Blue"}],
    )
    group_ids: list[Id] = Field(
        default_factory=list,
        max_length=1000,
        description="The groups they belong to (replacing any others).",
        examples=[[3]],
    )


class ContactPatch(Schema):
    number: str | None = Field(
        default=None,
        max_length=64,
        description="A new number.",
        examples=["+447700900124"],
    )
    name: str | None = Field(
        default=None, max_length=200, description="A new name.", examples=["Ann Lee"]
    )
    email: str | None = Field(
        default=None,
        max_length=254,
        description="A new email.",
        examples=["ann@example.com"],
    )
    fields: dict[str, str] | None = Field(
        default=None,
        description="Replaces all custom fields.",
        examples=[{"team": "Red"}],
    )
    group_ids: list[Id] | None = Field(
        default=None,
        max_length=1000,
        description="Replaces the groups.",
        examples=[[3, 4]],
    )


class ContactOut(Schema):
    id: int = Field(description="The contact's id.", examples=[12])
    number: str = Field(
        description="Their number: E.164 if the key's user may see full numbers, "
        "otherwise masked.",
        examples=["+44 7700 9•• •23"],
    )
    name: str = Field(description="Their name.", examples=["Ann Lee"])
    email: str = Field(description="Their email.", examples=["ann@example.com"])
    fields: dict[str, str] = Field(
        description="Custom fields.", examples=[{"team": "Blue"}]
    )
    group_ids: list[Id] = Field(description="Their groups.", examples=[[3]])
    created_at: datetime = Field(
        description="When they were added.", examples=["2025-01-31T09:30:00Z"]
    )
    updated_at: datetime = Field(
        description="When they last changed.", examples=["2025-01-31T09:30:00Z"]
    )


class ContactPage(Schema):
    items: list[ContactOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last.",
        examples=["120"],
    )


class PageQuery(Schema):
    cursor: str | None = Field(
        default=None,
        max_length=20,
        description="`next_cursor` of the page before.",
        examples=["120"],
    )
    limit: int = Field(
        default=50, ge=1, le=200, description="Page size.", examples=[50]
    )


class BulkIn(Schema):
    contacts: list[ContactIn] = Field(
        min_length=1,
        max_length=BULK_MAX,
        description="Contacts to add, or to update when their number is in the "
        "book already.",
    )


class BulkItem(Schema):
    index: int = Field(description="Position in `contacts`.", examples=[0])
    id: int | None = Field(description="The contact, unless refused.", examples=[12])
    result: str = Field(
        description="`created`, `updated` or `refused`.", examples=["created"]
    )
    error: str | None = Field(
        default=None, description="Why it was refused.", examples=[None]
    )
    field: str | None = Field(
        default=None, description="The field at fault.", examples=[None]
    )


class BulkOut(Schema):
    created: int = Field(description="How many were added.", examples=[10])
    updated: int = Field(description="How many were changed.", examples=[2])
    refused: int = Field(description="How many were refused.", examples=[1])
    items: list[BulkItem] = Field(description="One entry per contact sent.")


class GroupIn(Schema):
    name: str = Field(
        max_length=80,
        description="Its name, unique in the account.",
        examples=["Volunteers"],
    )
    description: str = Field(
        default="",
        max_length=200,
        description="What it is for.",
        examples=["Saturday rota"],
    )


class GroupPatch(Schema):
    name: str | None = Field(
        default=None, max_length=80, description="A new name.", examples=["Helpers"]
    )
    description: str | None = Field(
        default=None, max_length=200, description="A new description.", examples=[""]
    )


class GroupOut(Schema):
    id: int = Field(description="The group's id.", examples=[3])
    name: str = Field(description="Its name.", examples=["Volunteers"])
    description: str = Field(description="What it is for.", examples=["Saturday rota"])
    created_at: datetime = Field(
        description="When it was made.", examples=["2025-01-31T09:30:00Z"]
    )


class OptOutIn(Schema):
    number: str = Field(
        max_length=64,
        description="The number to stop texting.",
        examples=["+447700900123"],
    )


class OptOutOut(Schema):
    id: int = Field(description="The entry's id.", examples=[7])
    number: str = Field(
        description="The number: E.164 if the key's user may see full numbers, "
        "otherwise masked.",
        examples=["+44 7700 9•• •23"],
    )
    source: str = Field(
        description="`reply` (they texted STOP) or `manual`.", examples=["reply"]
    )
    created_at: datetime = Field(
        description="When it was added.", examples=["2025-01-31T09:30:00Z"]
    )


class OptOutPage(Schema):
    items: list[OptOutOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        description="For the next page; null on the last.", examples=[None]
    )


def _cursor(value: str | None) -> int:
    if value is None:
        return 0
    if not value.isdigit() or int(value) > ID_MAX:
        raise ApiError(
            "validation_error", "The cursor is not one this API gave.", field="cursor"
        )
    return int(value)


def _id(value: int) -> int:
    if not 0 < value <= ID_MAX:
        raise ApiError("not_found", "Not found.")
    return value


def contact_out(contact: Contact, viewer: User) -> ContactOut:
    return ContactOut(
        id=contact.pk,
        number=number_for(viewer, contact.number),
        name=contact.name,
        email=contact.email,
        fields=contact.fields,
        group_ids=sorted(g.pk for g in contact.groups.all()),
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )


@router.get(
    "/contacts",
    response={200: ContactPage, **READ_ERRORS},
    summary="Contacts, oldest first",
)
def contact_list(request: HttpRequest, page: Query[PageQuery]) -> ContactPage:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    query_check(request, PageQuery)
    found = list(
        Contact.objects.for_user(user)
        .filter(pk__gt=_cursor(page.cursor))
        .prefetch_related("groups")
        .order_by("pk")[: page.limit + 1]
    )
    more = len(found) > page.limit
    found = found[: page.limit]
    return ContactPage(
        items=[contact_out(c, user) for c in found],
        next_cursor=str(found[-1].pk) if more and found else None,
    )


@router.post(
    "/contacts", response={201: ContactOut, **WRITE_ERRORS}, summary="Add a contact"
)
def contact_add(
    request: HttpRequest,
    payload: ContactIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.MANAGE_CONTACTS)

    def produce() -> tuple[int, ContactOut]:
        try:
            contact = contact_create(
                user=user,
                number=payload.number,
                details=ContactDetails(payload.name, payload.email, payload.fields),
                group_ids=payload.group_ids,
                request=request,
            )
        except ValidationError as exc:
            raise refused(exc) from exc
        return 201, contact_out(contact, user)

    return idempotent(request, user, idempotency_key, produce)


@router.post(
    "/contacts/bulk",
    response={200: BulkOut, **WRITE_ERRORS},
    summary="Add or update many contacts by number",
    description="Each contact is matched by number: added when new, updated when "
    "in the book. A refused one is reported in `items` and does not stop the "
    "others.",
)
def contact_bulk(
    request: HttpRequest,
    payload: BulkIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.MANAGE_CONTACTS)

    def produce() -> tuple[int, BulkOut]:
        items = []
        for index, entry in enumerate(payload.contacts):
            details = ContactDetails(entry.name, entry.email, entry.fields)
            try:
                # A savepoint each, so one refusal leaves the others standing.
                with transaction.atomic():
                    try:
                        existing = contact_find(user, entry.number)
                    except InvalidNumber:
                        existing = None
                    if existing is None:
                        contact = contact_create(
                            user=user, number=entry.number, details=details,
                            group_ids=entry.group_ids, request=request,
                        )  # fmt: skip
                        result = "created"
                    else:
                        contact = contact_update(
                            user=user, contact=existing, details=details,
                            group_ids=entry.group_ids, request=request,
                        )  # fmt: skip
                        result = "updated"
            except ValidationError as exc:
                error = refused(exc)
                items.append(
                    BulkItem(index=index, id=None, result="refused",
                             error=error.message, field=error.field)
                )  # fmt: skip
                continue
            items.append(BulkItem(index=index, id=contact.pk, result=result))
        counts = {
            name: sum(i.result == name for i in items)
            for name in ("created", "updated", "refused")
        }
        return 200, BulkOut(items=items, **counts)

    return idempotent(request, user, idempotency_key, produce)


@router.get(
    "/contacts/{contact_id}",
    response={200: ContactOut, **READ_ERRORS},
    summary="One contact",
)
def contact_detail(request: HttpRequest, contact_id: int) -> ContactOut:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    contact = get_for_user_or_404(Contact, user, pk=_id(contact_id))
    return contact_out(contact, user)


@router.patch(
    "/contacts/{contact_id}",
    response={200: ContactOut, **WRITE_ERRORS},
    summary="Change a contact",
    description="Fields left out keep their values.",
)
def contact_change(
    request: HttpRequest, contact_id: int, payload: ContactPatch
) -> ContactOut:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    contact = get_for_user_or_404(Contact, user, pk=_id(contact_id))
    group_ids = (
        payload.group_ids
        if payload.group_ids is not None
        else list(contact.groups.values_list("pk", flat=True))
    )
    details = ContactDetails(
        name=contact.name if payload.name is None else payload.name,
        email=contact.email if payload.email is None else payload.email,
        fields=contact.fields if payload.fields is None else payload.fields,
    )
    try:
        contact = contact_update(
            user=user, contact=contact, details=details, number=payload.number or "",
            group_ids=group_ids, request=request,
        )  # fmt: skip
    except ValidationError as exc:
        raise refused(exc) from exc
    return contact_out(contact, user)


@router.delete(
    "/contacts/{contact_id}",
    response={204: None, **WRITE_ERRORS},
    summary="Remove a contact",
)
def contact_remove(request: HttpRequest, contact_id: int) -> Status[None]:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    contact = get_for_user_or_404(Contact, user, pk=_id(contact_id))
    contact_delete(user=user, contact=contact, request=request)
    return Status(204, None)


def group_out(group: Group) -> GroupOut:
    return GroupOut(
        id=group.pk,
        name=group.name,
        description=group.description,
        created_at=group.created_at,
    )


@router.get(
    "/groups", response={200: list[GroupOut], **READ_ERRORS}, summary="All groups"
)
def group_list(request: HttpRequest) -> list[GroupOut]:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    return [group_out(g) for g in Group.objects.for_user(user).order_by("name", "pk")]


@router.post(
    "/groups", response={201: GroupOut, **WRITE_ERRORS}, summary="Make a group"
)
def group_add(
    request: HttpRequest,
    payload: GroupIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.MANAGE_CONTACTS)

    def produce() -> tuple[int, GroupOut]:
        try:
            group = group_create(
                user=user,
                name=payload.name,
                description=payload.description,
                request=request,
            )
        except ValidationError as exc:
            raise refused(exc) from exc
        return 201, group_out(group)

    return idempotent(request, user, idempotency_key, produce)


@router.get(
    "/groups/{group_id}", response={200: GroupOut, **READ_ERRORS}, summary="One group"
)
def group_detail(request: HttpRequest, group_id: int) -> GroupOut:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    return group_out(get_for_user_or_404(Group, user, pk=_id(group_id)))


@router.patch(
    "/groups/{group_id}",
    response={200: GroupOut, **WRITE_ERRORS},
    summary="Change a group",
)
def group_change(request: HttpRequest, group_id: int, payload: GroupPatch) -> GroupOut:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    group = get_for_user_or_404(Group, user, pk=_id(group_id))
    try:
        group = group_update(
            user=user,
            group=group,
            name=group.name if payload.name is None else payload.name,
            description=group.description
            if payload.description is None
            else payload.description,
            request=request,
        )
    except ValidationError as exc:
        raise refused(exc) from exc
    return group_out(group)


@router.delete(
    "/groups/{group_id}",
    response={204: None, **WRITE_ERRORS},
    summary="Remove a group",
    description="Its contacts stay in the address book.",
)
def group_remove(request: HttpRequest, group_id: int) -> Status[None]:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    group = get_for_user_or_404(Group, user, pk=_id(group_id))
    group_delete(user=user, group=group, request=request)
    return Status(204, None)


def opt_out_out(entry: OptOut, viewer: User) -> OptOutOut:
    return OptOutOut(
        id=entry.pk,
        number=number_for(viewer, entry.number),
        source=entry.source,
        created_at=entry.created_at,
    )


@router.get(
    "/opt-outs",
    response={200: OptOutPage, **READ_ERRORS},
    summary="Numbers that opted out",
)
def opt_out_list(request: HttpRequest, page: Query[PageQuery]) -> OptOutPage:
    user = acting_user(request, Scope.MANAGE_CONTACTS)
    query_check(request, PageQuery)
    found = list(
        OptOut.objects.for_user(user)
        .filter(pk__gt=_cursor(page.cursor))
        .order_by("pk")[: page.limit + 1]
    )
    more = len(found) > page.limit
    found = found[: page.limit]
    return OptOutPage(
        items=[opt_out_out(o, user) for o in found],
        next_cursor=str(found[-1].pk) if more and found else None,
    )


@router.post(
    "/opt-outs",
    response={201: OptOutOut, **WRITE_ERRORS},
    summary="Stop texting a number",
    description="Adding a number already on the list changes nothing and "
    "answers with its entry.",
)
def opt_out_add(
    request: HttpRequest,
    payload: OptOutIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.MANAGE_CONTACTS)

    def produce() -> tuple[int, OptOutOut]:
        try:
            entry = opt_out_add_by_user(
                user=user, number=payload.number, request=request
            )
        except ValidationError as exc:
            raise refused(exc) from exc
        return 201, opt_out_out(entry, user)

    return idempotent(request, user, idempotency_key, produce)
