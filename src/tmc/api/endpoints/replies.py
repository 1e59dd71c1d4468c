"""Replies to the user's texts, and marking them read."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from tmc.api.auth import acting_user, number_for
from tmc.api.endpoints.contacts import ID_MAX, _cursor
from tmc.api.endpoints.messages import READ_ERRORS, WRITE_ERRORS
from tmc.api.errors import ApiError, query_check
from tmc.api.models import Scope
from tmc.boomerang.models import ConversationEntry
from tmc.boomerang.services import reply_mark_read
from tmc.identity.models import User

router = Router(tags=["replies"])


class ReplyOut(Schema):
    id: int = Field(description="The reply's id.", examples=[88])
    sender: str = Field(
        description="Who replied: E.164 if the key's user may see full numbers, "
        "otherwise masked.",
        examples=["+44 7700 9•• •23"],
    )
    body: str = Field(description="What they wrote.", examples=["YES"])
    in_reply_to: int | None = Field(
        description="The message it answers.", examples=[1042]
    )
    question_id: int | None = Field(
        description="The Boomerang question it answers, if any.", examples=[5]
    )
    received_at: datetime = Field(
        description="When it arrived.", examples=["2025-01-31T09:30:00Z"]
    )
    read_at: datetime | None = Field(
        description="When it was marked read.", examples=["2025-01-31T09:30:00Z"]
    )


class ReplyPage(Schema):
    items: list[ReplyOut] = Field(description="Oldest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last.",
        examples=["88"],
    )


class ReplyQuery(Schema):
    unread: bool | None = Field(
        default=None, description="Only unread (true) or read (false) replies.",
        examples=[True],
    )  # fmt: skip
    cursor: str | None = Field(
        default=None, max_length=20, description="`next_cursor` of the page before.",
        examples=["88"],
    )  # fmt: skip
    limit: int = Field(
        default=50, ge=1, le=200, description="Page size.", examples=[50]
    )


def _visible(user: User) -> QuerySet[ConversationEntry]:
    """Replies in the user's own conversations; every one for managers, as in
    the web inbox."""
    entries = ConversationEntry.objects.filter(
        organisation_id=user.organisation_id, inbound__isnull=False
    )
    if not user.is_manager:
        entries = entries.filter(ticket__message__created_by=user)
    return entries.select_related("inbound", "ticket")


def reply_out(entry: ConversationEntry, viewer: User) -> ReplyOut:
    inbound = entry.inbound
    assert inbound is not None
    return ReplyOut(
        id=inbound.pk,
        sender=number_for(viewer, inbound.sender),
        body=inbound.body,
        in_reply_to=inbound.in_reply_to_id,
        question_id=entry.ticket.question_id,
        received_at=inbound.received_at,
        read_at=entry.read_at,
    )


@router.get(
    "/replies",
    response={200: ReplyPage, **READ_ERRORS},
    summary="Replies, oldest first",
    description="Replies to the key user's texts; a Controller's or "
    "Administrator's key sees the whole account's, as in the web inbox.",
)
def reply_list(request: HttpRequest, filters: Query[ReplyQuery]) -> ReplyPage:
    user = acting_user(request, Scope.READ_REPLIES)
    query_check(request, ReplyQuery)
    entries = _visible(user).filter(inbound_id__gt=_cursor(filters.cursor))
    if filters.unread is not None:
        entries = entries.filter(read_at__isnull=filters.unread)
    found = list(entries.order_by("inbound_id")[: filters.limit + 1])
    more = len(found) > filters.limit
    found = found[: filters.limit]
    return ReplyPage(
        items=[reply_out(e, user) for e in found],
        next_cursor=str(found[-1].inbound_id) if more and found else None,
    )


@router.post(
    "/replies/{reply_id}/read",
    response={200: ReplyOut, **WRITE_ERRORS},
    summary="Mark a reply read",
    description="Marking it again changes nothing.",
)
def reply_read(request: HttpRequest, reply_id: int) -> ReplyOut:
    user = acting_user(request, Scope.READ_REPLIES)
    if not 0 < reply_id <= ID_MAX:
        raise ApiError("not_found", "Not found.")
    entry = _visible(user).filter(inbound_id=reply_id).first()
    if entry is None:
        raise ApiError("not_found", "Not found.")
    return reply_out(reply_mark_read(entry=entry), user)
