"""Sending, previewing and reading messages."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.params.functions import Header
from pydantic import BeforeValidator, Field

from tmc.api.auth import acting_user, number_for, owned_or_404
from tmc.api.errors import ApiError, from_validation_error, query_check
from tmc.api.idempotency import idempotent
from tmc.api.models import Scope
from tmc.api.schemas import (
    ErrorOut,
    MessageIn,
    MessageOut,
    MessagePage,
    PreviewIn,
    PreviewOut,
    RemovedOut,
)
from tmc.boomerang.answers import Kind
from tmc.boomerang.models import Ticket
from tmc.boomerang.services import question_create, question_send
from tmc.identity.models import User
from tmc.messaging.campaigns import campaign_preview
from tmc.messaging.models import Message
from tmc.messaging.services import message_compose, message_send

router = Router(tags=["messages"])

# The services name the recipient ``recipient`` (one) or ``numbers`` (many);
# the API calls both ``to``.
FIELD_NAMES = {"recipient": "to", "numbers": "to", "contacts": "contact_ids",
               "groups": "group_ids"}  # fmt: skip
PAGE_SIZE_MAX = 200
IDEMPOTENCY_HEADER: Any = Header(
    default=None,
    alias="Idempotency-Key",
    description="Any unique string (a UUID, say). Retrying with the same key "
    "and body replays the first response instead of sending again.",
    example="5f2b6c1e-4d7a-4b1e-9a53-0c7f3e2d1a90",
)
WRITE_ERRORS: dict[int, Any] = {
    400: ErrorOut, 401: ErrorOut, 402: ErrorOut, 403: ErrorOut, 404: ErrorOut,
    409: ErrorOut, 422: ErrorOut, 429: ErrorOut,
}  # fmt: skip
READ_ERRORS: dict[int, Any] = {
    401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut,
}  # fmt: skip


def refused(exc: ValidationError) -> ApiError:
    error = from_validation_error(exc)
    if error.field is not None:
        error.field = FIELD_NAMES.get(error.field, error.field)
    return error


def numbers_text(numbers: list[str]) -> str:
    """The API's list of numbers as the campaign services take them: one a line."""
    return "\n".join(n.replace("\n", " ") for n in numbers)


def message_out(message: Message, viewer: User) -> MessageOut:
    return MessageOut(
        id=message.pk,
        to=number_for(viewer, message.recipient),
        sender=message.sender,
        body=message.body,
        status=message.status,  # type: ignore[arg-type]
        encoding=message.encoding,  # type: ignore[arg-type]
        parts=message.parts,
        credits=message.credits,
        campaign_id=message.campaign_id,
        question_id=getattr(message, "question_id", None),
        failure_reason=message.failure_reason,
        created_at=message.created_at,
        submitted_at=message.submitted_at,
        completed_at=message.completed_at,
    )


def _with_question(messages: QuerySet[Message]) -> QuerySet[Message]:
    tickets = Ticket.objects.filter(message=OuterRef("pk")).values("question_id")
    return messages.annotate(question_id=Subquery(tickets[:1]))


@router.post(
    "/messages/preview",
    response={200: PreviewOut, **WRITE_ERRORS},
    summary="What a send would do, without sending",
    description="Checks the recipients and the text as a send would: numbers "
    "kept and removed with the reason, encoding, parts and credits. Sends "
    "nothing and charges nothing. One number in `to` and nothing else "
    "previews `POST /messages`; more previews a send to many, which needs "
    "the user's permission to send in bulk.",
)
def preview(
    request: HttpRequest,
    payload: PreviewIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.SEND)
    return idempotent(
        request, user, idempotency_key, lambda: (200, _preview(user, payload))
    )


def _preview(user: User, payload: PreviewIn) -> PreviewOut:
    balance = user.organisation.credit_balance
    if len(payload.to) == 1 and not (payload.contact_ids or payload.group_ids):
        try:
            composed = message_compose(
                user=user, recipient=payload.to[0], body=payload.body,
                sender=payload.sender,
            )  # fmt: skip
        except ValidationError as exc:
            raise refused(exc) from exc
        user.organisation.refresh_from_db(fields=["credit_balance"])
        balance = user.organisation.credit_balance
        if composed.credits > balance:
            raise ApiError(
                "insufficient_credit",
                f"This needs {composed.credits} credits and the account has {balance}.",
            )
        return PreviewOut(
            recipients=[number_for(user, composed.recipient)],
            recipient_count=1,
            removed=[],
            sender=composed.sender,
            encoding=composed.segments.encoding,  # type: ignore[arg-type]
            parts=composed.segments.parts,
            credits=composed.credits,
            balance=balance,
            balance_after=balance - composed.credits,
        )

    try:
        found = campaign_preview(
            user=user,
            numbers_text=numbers_text(payload.to),
            contact_ids=payload.contact_ids,
            group_ids=payload.group_ids,
            body=payload.body,
            sender=payload.sender,
        )
    except ValidationError as exc:
        raise refused(exc) from exc
    return PreviewOut(
        recipients=[number_for(user, n) for n in found.recipients],
        recipient_count=found.recipient_count,
        removed=[
            RemovedOut(
                reason=r.reason.value,
                index=None if r.line is None else r.line - 1,
                number=number_for(user, r.number) if r.number else None,
                why=r.why,
            )
            for r in found.removed
        ],
        sender=found.sender,
        encoding=found.segments.encoding,  # type: ignore[arg-type]
        parts=found.segments.parts,
        credits=found.credits,
        balance=found.balance,
        balance_after=found.balance_after,
    )


@router.post(
    "/messages",
    response={201: MessageOut, **WRITE_ERRORS},
    summary="Send a message (or a question) to one recipient now",
    description="Validates, charges and queues one text. With `question`, the "
    "text leaves from a reply number and replies are collected as answers. "
    "Nothing is created or charged when any check fails.",
)
def send(
    request: HttpRequest,
    payload: MessageIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.SEND)

    def produce() -> tuple[int, MessageOut]:
        try:
            if payload.question is None:
                message = message_send(
                    user=user,
                    recipient=payload.to,
                    body=payload.body,
                    sender=payload.sender,
                    replace_lookalikes=payload.replace_lookalikes,
                    request=request,
                )
                question_id = None
            else:
                asked = payload.question
                question = question_create(
                    user=user,
                    title=asked.title,
                    kind=Kind(asked.kind),
                    options=asked.options,
                    language=asked.language,
                )
                message = question_send(
                    user=user,
                    recipient=payload.to,
                    body=payload.body,
                    question=question,
                    request=request,
                )
                question_id = question.pk
        except ValidationError as exc:
            raise refused(exc) from exc
        message.refresh_from_db()
        message.question_id = question_id  # type: ignore[attr-defined]
        return 201, message_out(message, user)

    return idempotent(request, user, idempotency_key, produce)


@router.get(
    "/messages/{message_id}",
    response={200: MessageOut, **READ_ERRORS},
    summary="One message",
    description="404 for an id of another organisation, as for no message.",
)
def message_detail(request: HttpRequest, message_id: int) -> MessageOut:
    user = acting_user(request, Scope.READ_MESSAGES)
    message = owned_or_404(Message, user, message_id)
    message.question_id = (  # type: ignore[attr-defined]
        Ticket.objects.filter(message=message)
        .values_list("question_id", flat=True)
        .first()
    )
    return message_out(message, user)


def _iso_moment(value: object) -> object:
    """Only an ISO 8601 date-time with its zone: pydantic alone would also
    take a bare number as a Unix time, which no client means here."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(
            "Give an ISO 8601 date-time, e.g. 2025-01-31T00:00:00Z."
        ) from exc
    if moment.tzinfo is None:
        raise ValueError("Give the time zone too, e.g. 2025-01-31T00:00:00Z.")
    return _in_utc(moment)


def _in_utc(moment: datetime) -> datetime:
    # PostgreSQL refuses offsets past 15:59 that ISO 8601 allows (up to
    # 23:59), and an offset can push a date past year 9999: UTC has neither.
    try:
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError("The date-time is out of range.") from exc


Moment = Annotated[datetime, BeforeValidator(_iso_moment)]


class MessageFilters(Schema):
    status: (
        Literal["queued", "submitting", "submitted", "delivered", "failed"] | None
    ) = Field(
        default=None,
        description="Only messages with this status.",
        examples=["delivered"],
    )
    since: Moment | None = Field(
        default=None,
        description="Only messages accepted at or after this time (ISO 8601).",
        examples=["2025-01-31T00:00:00Z"],
    )
    until: Moment | None = Field(
        default=None,
        description="Only messages accepted before this time (ISO 8601).",
        examples=["2025-02-01T00:00:00Z"],
    )
    campaign_id: int | None = Field(
        default=None,
        ge=1,
        le=2**63 - 1,
        description="Only the messages of this campaign.",
        examples=[77],
    )
    cursor: str | None = Field(
        default=None,
        max_length=200,
        description="`next_cursor` of the page before.",
        examples=["eyJpZCI6IDEwMDB9"],
    )
    limit: int = Field(
        default=50, ge=1, le=PAGE_SIZE_MAX, description="Page size.", examples=[50]
    )


def _cursor_encode(message: Message) -> str:
    raw = json.dumps({"at": message.created_at.isoformat(), "id": message.pk})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        at = datetime.fromisoformat(data["at"])
        pk = int(data["id"])
        if at.tzinfo is None or not 0 < pk < 2**63:
            raise ValueError("naive time or bad id")
        at = _in_utc(at)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ApiError(
            "validation_error", "The cursor is not one this API gave.", field="cursor"
        ) from exc
    return at, pk


@router.get(
    "/messages",
    response={200: MessagePage, **READ_ERRORS},
    summary="Messages, newest first",
    description="Cursor pagination: pass `next_cursor` back as `cursor`. Pages "
    "stay consistent while new messages arrive.",
)
def message_list(request: HttpRequest, filters: Query[MessageFilters]) -> MessagePage:
    user = acting_user(request, Scope.READ_MESSAGES)
    query_check(request, MessageFilters)
    messages = _with_question(Message.objects.for_user(user)).order_by(
        "-created_at", "-id"
    )
    if filters.status:
        messages = messages.filter(status=filters.status)
    if filters.campaign_id:
        messages = messages.filter(campaign_id=filters.campaign_id)
    if filters.since:
        messages = messages.filter(created_at__gte=filters.since)
    if filters.until:
        messages = messages.filter(created_at__lt=filters.until)
    if filters.cursor:
        at, pk = _cursor_decode(filters.cursor)
        messages = messages.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))

    page = list(messages[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return MessagePage(
        items=[message_out(m, user) for m in page],
        next_cursor=_cursor_encode(page[-1]) if more and page else None,
    )
