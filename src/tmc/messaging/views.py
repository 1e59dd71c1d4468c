from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.formerrors import form_errors_add
from tmc.identity.access import control_area, signed_in
from tmc.identity.models import Permission, User
from tmc.lib.lookalikes import lookalikes_offer
from tmc.lib.merge import MergeSyntaxError, merge_parse
from tmc.lib.segments import count_segments
from tmc.messaging.forms import ComposeForm, MessageTemplateForm
from tmc.messaging.models import Message, MessageTemplate
from tmc.messaging.services import (
    message_send,
    message_template_create,
    message_template_delete,
    message_template_update,
)
from tmc.messaging.trial import trial_notice

HISTORY_PAGE_SIZE = 50


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _ticked(data: Mapping[str, Any], name: str) -> bool:
    """Whether a checkbox was posted ticked, read as its form field reads it."""
    return bool(forms.BooleanField(required=False).to_python(data.get(name)))


def _live_info(
    body: str, *, replace_lookalikes: bool, notice: str = ""
) -> dict[str, object]:
    """What the counter below the message shows, and any look-alike offer.

    With the box ticked and an offer to take, the count is that of the text
    as it will be sent, and the page previews that text. Merge fields are
    listed, since the text sent to each recipient differs from the one
    counted. A trial's ``notice`` is counted with the text and shown.
    """
    offer = lookalikes_offer(body)
    replacing = offer is not None and replace_lookalikes
    sent = offer.text if offer is not None and replacing else body
    merge_fields: tuple[str, ...] = ()
    merge_problem = ""
    try:
        merge_fields = tuple(f"{{{key}}}" for key in merge_parse(body).fields)
    except MergeSyntaxError as exc:
        merge_problem = str(exc)
    return {
        "segments": count_segments(sent + notice),
        "notice": notice,
        "offer": offer,
        "replacing": replacing,
        "merge_fields": merge_fields,
        "merge_problem": merge_problem,
    }


def _template_asked_for(request: HttpRequest, user: User) -> MessageTemplate | None:
    """The template named by ``?template=``, if any; 404 if not the user's."""
    raw = request.GET.get("template", "")
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404("No template matches the query.")
    return get_for_user_or_404(MessageTemplate, user, pk=int(raw))


@signed_in
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    chosen = _template_asked_for(request, user) if request.method == "GET" else None
    initial = {"body": chosen.body} if chosen is not None else {}
    form = ComposeForm(request.POST or None, user=user, initial=initial)
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
            form_errors_add(form, exc)
        else:
            if message.hold_until is not None:
                local = timezone.localtime(message.hold_until, user.organisation.zone)
                flash.success(
                    request,
                    f"Message {message.pk} is held for your quiet hours and goes "
                    f"at {local:%H:%M}.",
                )
            else:
                flash.success(request, f"Message {message.pk} queued for sending.")
            return redirect("messaging:history")

    body = str(form.data.get("body", "")) if form.is_bound else initial.get("body", "")
    live = _live_info(
        body,
        replace_lookalikes=_ticked(form.data, "replace_lookalikes"),
        notice=trial_notice(user.organisation),
    )
    templates = MessageTemplate.objects.for_user(user).only("pk", "name")
    quiet = user.organisation.quiet_hours
    return render(
        request,
        "messaging/compose.html",
        {
            "form": form,
            "templates": templates,
            "hold_until": user.organisation.quiet_release(timezone.now()),
            "quiet_hours": quiet.describe() if quiet else "",
            **live,
        },
    )


@signed_in
@require_POST
def segments(request: HttpRequest) -> HttpResponse:
    """Answer the compose page's live count as the author types."""
    live = _live_info(
        request.POST.get("body", ""),
        replace_lookalikes=_ticked(request.POST, "replace_lookalikes"),
        notice=trial_notice(_user(request).organisation),
    )
    return render(request, "messaging/segments_info.html", live)


@signed_in
@require_GET
def template_use(request: HttpRequest) -> HttpResponse:
    """Fill the compose page's message with a template's body (htmx).

    No template chosen leaves the message as it is (204: nothing to swap).
    """
    user = _user(request)
    chosen = _template_asked_for(request, user)
    if chosen is None:
        return HttpResponse(status=204)
    form = ComposeForm(user=user, initial={"body": chosen.body})
    live = _live_info(
        chosen.body,
        replace_lookalikes=_ticked(request.GET, "replace_lookalikes"),
        notice=trial_notice(user.organisation),
    )
    return render(request, "messaging/body_field.html", {"form": form, **live})


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
            failed=Count(
                "id",
                filter=Q(status__in=[Message.Status.FAILED, Message.Status.EXPIRED]),
            ),
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


# --- templates -----------------------------------------------------------------


@signed_in
@require_GET
def template_list(request: HttpRequest) -> HttpResponse:
    templates = MessageTemplate.objects.for_user(_user(request)).select_related(
        "created_by"
    )
    rows = [(template, count_segments(template.body)) for template in templates]
    return render(request, "messaging/template_list.html", {"rows": rows})


def _template_form_page(
    request: HttpRequest, form: MessageTemplateForm, template: MessageTemplate | None
) -> HttpResponse:
    live = _live_info(str(form["body"].value() or ""), replace_lookalikes=False)
    return render(
        request,
        "messaging/template_form.html",
        {"form": form, "template": template, **live},
    )


@signed_in
@require_http_methods(["GET", "POST"])
def template_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = MessageTemplateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            template = message_template_create(
                user=user,
                name=form.cleaned_data["name"],
                body=form.cleaned_data["body"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            flash.success(request, f"The template {template.name} has been saved.")
            return redirect("messaging:templates")
    return _template_form_page(request, form, None)


@signed_in
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    user = _user(request)
    template = get_for_user_or_404(MessageTemplate, user, pk=template_id)
    form = MessageTemplateForm(
        request.POST or None, initial={"name": template.name, "body": template.body}
    )
    if request.method == "POST" and form.is_valid():
        try:
            message_template_update(
                user=user,
                template=template,
                name=form.cleaned_data["name"],
                body=form.cleaned_data["body"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            flash.success(request, f"The template {template.name} has been saved.")
            return redirect("messaging:templates")
    return _template_form_page(request, form, template)


@signed_in
@require_http_methods(["GET", "POST"])
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    user = _user(request)
    template = get_for_user_or_404(MessageTemplate, user, pk=template_id)
    if request.method == "POST":
        message_template_delete(user=user, template=template, request=request)
        flash.success(request, f"The template {template.name} has been deleted.")
        return redirect("messaging:templates")
    return render(request, "messaging/template_delete.html", {"template": template})
