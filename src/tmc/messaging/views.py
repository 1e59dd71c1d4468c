from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.identity.access import control_area, signed_in
from tmc.identity.models import Permission, User
from tmc.lib.lookalikes import lookalikes_offer
from tmc.lib.segments import count_segments
from tmc.messaging.forms import ComposeForm
from tmc.messaging.models import Message
from tmc.messaging.services import message_send

HISTORY_PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _ticked(data: Mapping[str, Any], name: str) -> bool:
    """Whether a checkbox was posted ticked, read as its form field reads it."""
    return bool(forms.BooleanField(required=False).to_python(data.get(name)))


def _live_info(body: str, *, replace_lookalikes: bool) -> dict[str, object]:
    """What the counter below the message shows, and any look-alike offer.

    With the box ticked and an offer to take, the count is that of the text
    as it will be sent, and the page previews that text.
    """
    offer = lookalikes_offer(body)
    if offer is not None and replace_lookalikes:
        return {"segments": offer.after, "offer": offer, "replacing": True}
    return {"segments": count_segments(body), "offer": offer, "replacing": False}


@signed_in
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ComposeForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            message = message_send(
                user=user,
                recipient=form.cleaned_data["recipient"],
                body=form.cleaned_data["body"],
                sender=form.cleaned_data["sender"],
                replace_lookalikes=form.cleaned_data["replace_lookalikes"],
                request=request,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field, error)
        else:
            flash.success(request, f"Message {message.pk} queued for sending.")
            return redirect("messaging:history")

    body = str(form.data.get("body", "")) if form.is_bound else ""
    live = _live_info(body, replace_lookalikes=_ticked(form.data, "replace_lookalikes"))
    return render(request, "messaging/compose.html", {"form": form, **live})


@signed_in
@require_POST
def segments(request: HttpRequest) -> HttpResponse:
    """Answer the compose page's live count as the author types."""
    live = _live_info(
        request.POST.get("body", ""),
        replace_lookalikes=_ticked(request.POST, "replace_lookalikes"),
    )
    return render(request, "messaging/segments_info.html", live)


@signed_in
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    recent = list(
        Message.objects.for_user(user).select_related("created_by")[:HISTORY_PAGE_SIZE]
    )
    context = {
        "messages_list": recent,
        "still_moving": any(not m.is_final for m in recent),
    }
    template = (
        "messaging/message_list.html"
        if request.htmx  # type: ignore[attr-defined]
        else "messaging/history.html"
    )
    return render(request, template, context)


@signed_in
@require_GET
def detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_for_user_or_404(Message, _user(request), pk=message_id)
    return render(request, "messaging/detail.html", {"message": message})


@control_area(permission=Permission.VIEW_REPORTS)
@require_GET
def report(request: HttpRequest) -> HttpResponse:
    """Usage over the last 30 days: per user, and per day for the chart."""
    user = _user(request)
    since = timezone.now() - timedelta(days=30)
    recent = Message.objects.for_user(user).filter(created_at__gte=since)
    per_user = list(
        recent.values("created_by__username")
        .annotate(
            messages=Count("id"),
            credits=Sum("credits"),
            delivered=Count("id", filter=Q(status=Message.Status.DELIVERED)),
            failed=Count("id", filter=Q(status=Message.Status.FAILED)),
        )
        .order_by("-credits")
    )
    per_day = list(
        recent.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(credits=Sum("credits"))
        .order_by("day")
    )
    peak = max((row["credits"] for row in per_day), default=0)
    for row in per_day:
        row["percent"] = round(100 * row["credits"] / peak) if peak else 0
    return render(
        request,
        "messaging/report.html",
        {"per_user": per_user, "per_day": per_day, "since": since},
    )
