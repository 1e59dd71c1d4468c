"""Sending one text to many recipients (numbers, contacts, groups) at once."""

from __future__ import annotations

from dataclasses import asdict

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from ninja import Router

from tmc.api.auth import acting_user, owned_or_404
from tmc.api.endpoints.messages import (
    IDEMPOTENCY_HEADER,
    READ_ERRORS,
    WRITE_ERRORS,
    numbers_text,
    refused,
)
from tmc.api.errors import ApiError
from tmc.api.idempotency import idempotent
from tmc.api.models import Scope
from tmc.api.schemas import CampaignIn, CampaignOut, ProgressOut, RemovedCountsOut
from tmc.lib.merge import MergeSyntaxError, merge_parse
from tmc.messaging.campaigns import campaign_progress, campaign_send
from tmc.messaging.models import Campaign

router = Router(tags=["campaigns"])


def _merge_fields_refuse(body: str) -> None:
    """A campaign sends one text to all: a merge field would go out as typed."""
    try:
        fields = merge_parse(body).fields
    except MergeSyntaxError:
        return  # not a merge field at all: sent as written, as on the web
    if fields:
        raise ApiError(
            "validation_error",
            f"Merge fields such as {{{fields[0]}}} are filled only in texts to "
            "one recipient (POST /messages); write the text without them.",
            field="body",
        )


def campaign_out(campaign: Campaign, progress: ProgressOut) -> CampaignOut:
    return CampaignOut(
        id=campaign.pk,
        status=campaign.status,  # type: ignore[arg-type]
        sender=campaign.sender,
        encoding=campaign.encoding,  # type: ignore[arg-type]
        parts=campaign.parts,
        recipient_count=campaign.recipient_count,
        credits=campaign.credits_reserved,
        removed=RemovedCountsOut(
            invalid=campaign.invalid_count,
            duplicate=campaign.duplicate_count,
            opted_out=campaign.opted_out_count,
        ),
        progress=progress,
        held_until=campaign.hold_until,
        created_at=campaign.created_at,
        completed_at=campaign.completed_at,
    )


@router.post(
    "/campaigns",
    response={201: CampaignOut, **WRITE_ERRORS},
    summary="Send one text to many recipients",
    description="Numbers in `to`, contacts and groups' members, up to 100,000 "
    "after invalid numbers, duplicates and opted-out numbers are left out "
    "(as `POST /messages/preview` shows). All credits are taken at once and "
    "the messages are queued; nothing is created or charged when any check "
    "fails (402 when the balance does not cover it). Needs the user's "
    "permission to send in bulk.",
)
def campaign_create(
    request: HttpRequest,
    payload: CampaignIn,
    idempotency_key: str | None = IDEMPOTENCY_HEADER,
) -> HttpResponse:
    user = acting_user(request, Scope.SEND)
    _merge_fields_refuse(payload.body)

    def produce() -> tuple[int, CampaignOut]:
        try:
            campaign = campaign_send(
                user=user,
                numbers_text=numbers_text(payload.to),
                contact_ids=payload.contact_ids,
                group_ids=payload.group_ids,
                body=payload.body,
                sender=payload.sender,
                request=request,
            )
        except ValidationError as exc:
            raise refused(exc) from exc
        queued = ProgressOut(
            queued=campaign.recipient_count,
            submitted=0,
            delivered=0,
            failed=0,
            cancelled=0,
        )
        return 201, campaign_out(campaign, queued)

    return idempotent(request, user, idempotency_key, produce)


@router.get(
    "/campaigns/{campaign_id}",
    response={200: CampaignOut, **READ_ERRORS},
    summary="One campaign and its progress",
    description="404 for an id of another organisation, as for no campaign.",
)
def campaign_detail(request: HttpRequest, campaign_id: int) -> CampaignOut:
    user = acting_user(request, Scope.READ_MESSAGES)
    campaign = owned_or_404(Campaign, user, campaign_id)
    progress = campaign_progress(campaign=campaign)
    return campaign_out(campaign, ProgressOut.model_validate(asdict(progress)))
