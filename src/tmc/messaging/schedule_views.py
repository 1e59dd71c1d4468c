"""Pages for scheduled sends: the list, one schedule's runs, edit, cancel."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.identity.access import signed_in
from tmc.identity.models import User
from tmc.messaging.campaign_forms import CampaignForm, WhenForm
from tmc.messaging.models import Schedule
from tmc.messaging.scheduling import (
    schedule_cancel,
    schedule_may_change,
    schedule_update,
)

SCHEDULES_PAGE_SIZE = 100
RUNS_SHOWN = 100


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def errors_to_forms(exc: ValidationError, *forms: Form) -> None:
    """Put each error by its field in whichever form has it, else on the first."""
    if not hasattr(exc, "error_dict"):
        for message in exc.messages:
            forms[0].add_error(None, message)
        return
    for field, problems in exc.message_dict.items():
        owner = next((f for f in forms if field in f.fields), None)
        for problem in problems:
            (owner or forms[0]).add_error(field if owner is not None else None, problem)


@signed_in
@require_GET
def scheduled_list(request: HttpRequest) -> HttpResponse:
    """The organisation's schedules: what runs next first, finished ones last."""
    schedules = list(
        Schedule.objects.for_user(_user(request))
        .select_related("created_by", "organisation")
        .order_by("status", "next_run_at", "-pk")[:SCHEDULES_PAGE_SIZE]
    )
    # Active first, in the order they run.
    schedules.sort(key=lambda s: (not s.is_active,))
    return render(request, "messaging/scheduled_list.html", {"schedules": schedules})


@signed_in
@require_GET
def schedule_detail(request: HttpRequest, schedule_id: int) -> HttpResponse:
    user = _user(request)
    schedule = get_for_user_or_404(Schedule, user, pk=schedule_id)
    runs = list(schedule.runs.select_related("campaign", "message")[:RUNS_SHOWN])
    context = {
        "schedule": schedule,
        "runs": runs,
        "may_change": schedule_may_change(user, schedule),
    }
    return render(request, "messaging/schedule.html", context)


@signed_in
@require_http_methods(["GET", "POST"])
def schedule_edit(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """Change what and when, until the first run starts."""
    user = _user(request)
    schedule = get_for_user_or_404(Schedule, user, pk=schedule_id)
    if not schedule_may_change(user, schedule):
        raise PermissionDenied("Only its author or a manager may change it.")
    if not schedule.is_changeable:
        flash.error(request, "This schedule has started; it can no longer be changed.")
        return redirect("messaging:schedule", schedule_id=schedule.pk)

    author = schedule.created_by
    initial = {
        "numbers": schedule.numbers,
        "groups": schedule.group_ids,
        "sender": schedule.sender,
        "body": schedule.body,
    }
    form = CampaignForm(request.POST or None, user=author, initial=initial)
    when_form = WhenForm(
        request.POST or None,
        zone=user.organisation.zone,
        initial=WhenForm.initial_for(schedule),
    )
    valid = [f.is_valid() for f in (form, when_form)]
    if request.method == "POST" and all(valid) and when_form.is_now:
        when_form.add_error("timing", "Choose a date and time, or a repeat.")
    elif request.method == "POST" and all(valid):
        try:
            schedule_update(
                user=user,
                schedule=schedule,
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
            flash.success(request, "Schedule saved.")
            return redirect("messaging:schedule", schedule_id=schedule.pk)
    context = {"schedule": schedule, "form": form, "when_form": when_form}
    return render(request, "messaging/schedule_edit.html", context)


@signed_in
@require_POST
def schedule_cancel_view(request: HttpRequest, schedule_id: int) -> HttpResponse:
    user = _user(request)
    schedule = get_for_user_or_404(Schedule, user, pk=schedule_id)
    if not schedule_may_change(user, schedule):
        raise PermissionDenied("Only its author or a manager may cancel it.")
    try:
        schedule_cancel(user=user, schedule=schedule, request=request)
    except ValidationError as exc:
        flash.error(request, " ".join(exc.messages))
    else:
        flash.success(request, "Schedule cancelled: nothing more will be sent.")
    return redirect("messaging:schedule", schedule_id=schedule.pk)
