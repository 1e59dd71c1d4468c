"""What the API takes and returns; every field described, with an example."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field, StrictBool, StrictInt

# A database id: anything else can name no row, and a bigger integer would
# overflow the query instead of finding nothing.
Id = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]

NUMBER_NOTE = (
    " E.164 if the key's user may see full numbers, otherwise masked "
    "(`+44 7700 9•• •23`)."
)


class ErrorDetail(Schema):
    code: str = Field(
        description="Stable, machine-readable code; see the list in the docs.",
        examples=["validation_error"],
    )
    message: str = Field(
        description="What went wrong, for a person to read.",
        examples=["Write the message."],
    )
    field: str | None = Field(
        default=None,
        description="The request field at fault, when there is one.",
        examples=["body"],
    )


class ErrorOut(Schema):
    error: ErrorDetail = Field(description="The one error of this response.")


class QuestionIn(Schema):
    title: str = Field(
        max_length=120,
        description="The question's name on its results page.",
        examples=["Shift cover Saturday"],
    )
    kind: Literal["yes_no", "choice", "number", "text"] = Field(
        description="The answers expected: yes/no, one of `options`, a number "
        "or free text.",
        examples=["yes_no"],
    )
    options: list[str] = Field(
        default_factory=list,
        max_length=26,
        description="For `choice`: at least two options, lettered A, B, C…",
        examples=[["Morning", "Afternoon"]],
    )
    language: str = Field(
        default="en",
        max_length=8,
        description="The language replies are read in.",
        examples=["en"],
    )


class MessageIn(Schema):
    to: str = Field(
        max_length=64,
        description="The recipient's mobile number, international or in the "
        "account's default region's national format.",
        examples=["+447700900123"],
    )
    body: str = Field(
        max_length=5000,
        description="The text. Merge fields such as `{first_name}` are filled "
        "from the recipient's contact.",
        examples=["Hello {first_name}, your parcel arrives today."],
    )
    sender: str = Field(
        default="",
        max_length=16,
        description="An approved sender of the account; empty for its default. "
        "Ignored for questions, which leave from a reply number.",
        examples=["AcmeAlerts"],
    )
    replace_lookalikes: StrictBool = Field(
        default=False,
        description="Replace look-alike characters (curly quotes, say) when "
        "that makes the whole text GSM-7, which is cheaper.",
        examples=[True],
    )
    question: QuestionIn | None = Field(
        default=None,
        description="Make the text a Boomerang question: replies are "
        "collected and tallied.",
        examples=[{"title": "Shift cover Saturday", "kind": "yes_no"}],
    )


class PreviewIn(Schema):
    to: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="Mobile numbers to send to.",
        examples=[["+447700900123", "07700 900456"]],
    )
    contact_ids: list[Id] = Field(
        default_factory=list,
        max_length=10_000,
        description="Contacts of the account to send to.",
        examples=[[12]],
    )
    group_ids: list[Id] = Field(
        default_factory=list,
        max_length=1000,
        description="Groups whose members to send to.",
        examples=[[3]],
    )
    body: str = Field(
        max_length=5000,
        description="The text.",
        examples=["Our office is closed on Monday."],
    )
    sender: str = Field(
        default="",
        max_length=16,
        description="An approved sender; empty for the default.",
        examples=["AcmeAlerts"],
    )


class CampaignIn(PreviewIn):
    """Recipients and text of a send to many; the same fields as a preview."""


class RemovedCountsOut(Schema):
    invalid: int = Field(
        description="Numbers that are not mobile numbers.", examples=[0]
    )
    duplicate: int = Field(description="Numbers given more than once.", examples=[1])
    opted_out: int = Field(description="Numbers on the opt-out list.", examples=[2])


class ProgressOut(Schema):
    queued: int = Field(
        description="Messages not yet handed to a gateway.", examples=[41]
    )
    submitted: int = Field(
        description="Handed to a gateway, no report yet.", examples=[0]
    )
    delivered: int = Field(description="Delivered to the handset.", examples=[0])
    failed: int = Field(description="Failed or expired.", examples=[0])
    cancelled: int = Field(
        description="Withdrawn when the campaign was cancelled.", examples=[0]
    )


class CampaignOut(Schema):
    id: int = Field(
        description="The campaign's id; its messages are `GET /messages?campaign_id=`.",
        examples=[77],
    )
    status: Literal["queued", "sending", "done", "cancelled"] = Field(
        description="Where the campaign is.", examples=["queued"]
    )
    sender: str = Field(
        description="The sender its messages leave from.", examples=["AcmeAlerts"]
    )
    encoding: Literal["GSM-7", "UCS-2"] = Field(
        description="The encoding the text needs.", examples=["GSM-7"]
    )
    parts: int = Field(description="Parts of each message.", examples=[1])
    recipient_count: int = Field(
        description="Messages made: one per recipient kept.", examples=[998]
    )
    credits: int = Field(
        description="Credits taken: parts times recipients.", examples=[998]
    )
    removed: RemovedCountsOut = Field(
        description="How many numbers were left out, by reason "
        "(`POST /messages/preview` lists them)."
    )
    progress: ProgressOut = Field(description="Its messages counted by status.")
    held_until: datetime | None = Field(
        description="Accepted in the account's quiet hours: sending starts then.",
        examples=[None],
    )
    created_at: datetime = Field(
        description="When it was accepted.", examples=["2025-01-31T09:30:00Z"]
    )
    completed_at: datetime | None = Field(
        description="When every message had left the queue.", examples=[None]
    )


class RemovedOut(Schema):
    reason: Literal["invalid", "duplicate", "opted_out", "not_verified"] = Field(
        description="Why the number is left out.", examples=["opted_out"]
    )
    index: int | None = Field(
        description="Its position in `to` (from 0), or null for the address book.",
        examples=[1],
    )
    number: str | None = Field(
        description="The number (never for an invalid one)." + NUMBER_NOTE,
        examples=["+44 7700 9•• •56"],
    )
    why: str = Field(
        description="For an invalid number, what is wrong with it.",
        examples=["This is not a mobile number."],
    )


class PreviewOut(Schema):
    recipients: list[str] = Field(
        description="The numbers that would be sent to." + NUMBER_NOTE,
        examples=[["+44 7700 9•• •23"]],
    )
    recipient_count: int = Field(description="How many.", examples=[1])
    removed: list[RemovedOut] = Field(description="Numbers left out, with the reason.")
    sender: str = Field(
        description="The sender it would leave from.", examples=["AcmeAlerts"]
    )
    encoding: Literal["GSM-7", "UCS-2"] = Field(
        description="The encoding the text needs.", examples=["GSM-7"]
    )
    parts: int = Field(description="Parts of each message.", examples=[1])
    credits: int = Field(
        description="Credits the send would take: parts times recipients.", examples=[1]
    )
    balance: int = Field(description="The account's balance now.", examples=[500])
    balance_after: int = Field(
        description="The balance after such a send.", examples=[499]
    )


class MessageOut(Schema):
    id: int = Field(description="The message's id.", examples=[1042])
    to: str = Field(
        description="The recipient." + NUMBER_NOTE, examples=["+44 7700 9•• •23"]
    )
    sender: str = Field(
        description="The sender it leaves from (a reply number for questions).",
        examples=["AcmeAlerts"],
    )
    body: str = Field(
        description="The text as sent, merge fields filled.", examples=["Hello Ann"]
    )
    status: Literal[
        "queued",
        "submitting",
        "retrying",
        "submitted",
        "delivered",
        "failed",
        "expired",
        "cancelled",
    ] = Field(description="Where the message is.", examples=["queued"])
    encoding: Literal["GSM-7", "UCS-2"] = Field(
        description="Its encoding.", examples=["GSM-7"]
    )
    parts: int = Field(description="Its parts.", examples=[1])
    credits: int = Field(description="Credits it took.", examples=[1])
    campaign_id: int | None = Field(
        description="The campaign it belongs to, if any.", examples=[None]
    )
    question_id: int | None = Field(
        description="The Boomerang question it asks, if any.", examples=[None]
    )
    failure_reason: str = Field(description="Why it failed, if it did.", examples=[""])
    created_at: datetime = Field(
        description="When it was accepted.", examples=["2025-01-31T09:30:00Z"]
    )
    submitted_at: datetime | None = Field(
        description="When the gateway took it.", examples=["2025-01-31T09:30:00Z"]
    )
    completed_at: datetime | None = Field(
        description="When it was delivered or failed.",
        examples=["2025-01-31T09:30:00Z"],
    )


class MessagePage(Schema):
    items: list[MessageOut] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last.",
        examples=["eyJpZCI6IDEwMDB9"],
    )


class BalanceOut(Schema):
    credits: int = Field(description="Credits the account has.", examples=[500])
