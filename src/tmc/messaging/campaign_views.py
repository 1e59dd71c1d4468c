"""Pages for sending to many: the form with its preview, and campaigns."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.formerrors import form_errors_add
from tmc.identity.access import signed_in
from tmc.identity.models import Permission, User
from tmc.lib.segments import count_segments
from tmc.messaging.campaign_forms import CampaignForm, WhenForm
from tmc.messaging.campaigns import (
    CampaignPreview,
    campaign_preview,
    campaign_progress,
    campaign_send,
)
from tmc.messaging.cancelling import campaign_cancel, campaign_may_cancel
from tmc.messaging.models import Campaign, Message
from tmc.messaging.schedule_views import errors_to_forms
from tmc.messaging.scheduling import schedule_create

CAMPAIGNS_PAGE_SIZE = 50
# Removed numbers listed per reason; the counts are always complete.
REMOVED_SHOWN = 100


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@signed_in
@require_http_methods(["GET", "POST"])
def bulk(request: HttpRequest) -> HttpResponse:
    """Send to many: "Preview" shows who gets it and the cost, "Send" sends.

    With a time chosen, "Send" schedules it instead (``scheduling``).
    """
    user = _user(request)
    if not user.has_permission(Permission.SEND_BULK):
        raise PermissionDenied("Your permissions do not include sending to many.")
    form = CampaignForm(request.POST or None, user=user)
    when_form = WhenForm(request.POST or None, zone=user.organisation.zone)
    preview: CampaignPreview | None = None

    valid = [f.is_valid() for f in (form, when_form)]
    if (
        request.method == "POST"
        and all(valid)
        and "send" in request.POST
        and not when_form.is_now
    ):
        try:
            schedule = schedule_create(
                user=user,
                when=when_form.when(),
                numbers_text=form.cleaned_data["numbers"],
                group_ids=form.cleaned_data["groups"],
                body=form.cleaned_data["body"],
                sender=form.cleaned_data["sender"],
                request=request,
            )
        except ValidationError as exc:
            errors_to_forms(exc, form, when_form)
        else:
            flash.success(request, "Scheduled: see when it runs below.")
            return redirect("messaging:schedule", schedule_id=schedule.pk)
    elif request.method == "POST" and all(valid):
        choice = {
            "user": user,
            "numbers_text": form.cleaned_data["numbers"],
            "group_ids": form.cleaned_data["groups"],
            "body": form.cleaned_data["body"],
            "sender": form.cleaned_data["sender"],
        }
        try:
            if "send" in request.POST:
                campaign = campaign_send(**choice, request=request)
            else:
                preview = campaign_preview(**choice)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            if "send" in request.POST:
                flash.success(
                    request,
                    f"Campaign {campaign.pk} queued: "
                    f"{campaign.recipient_count} messages.",
                )
                return redirect("messaging:campaign", campaign_id=campaign.pk)

    body = form.data.get("body", "") if form.is_bound else ""
    context = {
        "form": form,
        "when_form": when_form,
        "preview": preview,
        "segments": count_segments(str(body)),
        "shown": REMOVED_SHOWN,
    }
    template = (
        "messaging/bulk_form.html"
        if request.htmx  # type: ignore[attr-defined]
        else "messaging/bulk.html"
    )
    return render(request, template, context)


@signed_in
@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    status = Message.Status
    campaigns = list(
        Campaign.objects.for_user(_user(request))
        .select_related("created_by")
        .annotate(
            delivered=Count("messages", filter=Q(messages__status=status.DELIVERED)),
            failed=Count("messages", filter=Q(messages__status=status.FAILED)),
        )[:CAMPAIGNS_PAGE_SIZE]
    )
    return render(request, "messaging/campaign_list.html", {"campaigns": campaigns})


@signed_in
@require_GET
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """A campaign and its live progress; htmx polls for the progress alone."""
    user = _user(request)
    campaign = get_for_user_or_404(Campaign, user, pk=campaign_id)
    context = {
        "campaign": campaign,
        "progress": campaign_progress(campaign=campaign),
        "may_cancel": campaign_may_cancel(user, campaign),
    }
    template = (
        "messaging/campaign_progress.html"
        if request.htmx  # type: ignore[attr-defined]
        else "messaging/campaign.html"
    )
    return render(request, template, context)


@signed_in
@require_POST
def campaign_cancel_view(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Cancel a campaign: what is not yet sent is withdrawn and refunded."""
    user = _user(request)
    campaign = get_for_user_or_404(Campaign, user, pk=campaign_id)
    try:
        withdrawn = campaign_cancel(user=user, campaign=campaign, request=request)
    except ValidationError as exc:
        flash.error(request, exc.messages[0])
    else:
        plural = "" if withdrawn == 1 else "s"
        flash.success(
            request,
            f"Campaign cancelled: {withdrawn} unsent message{plural} withdrawn "
            "and their credits returned.",
        )
    return redirect("messaging:campaign", campaign_id=campaign.pk)
