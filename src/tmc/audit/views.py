from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tmc.audit.forms import ActivityFilterForm
from tmc.audit.services import (
    activity_export,
    events_for_organisation,
    login_history,
)
from tmc.downloads import csv_download
from tmc.identity.access import control_area, signed_in
from tmc.identity.models import Permission, User

PAGE_SIZE = 100


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@control_area(permission=Permission.VIEW_REPORTS)
@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = ActivityFilterForm(request.GET or None)
    events = events_for_organisation(user.organisation, form.event_filter())
    return render(
        request,
        "audit/activity.html",
        {
            "form": form,
            "events": events[:PAGE_SIZE],
            "page_size": PAGE_SIZE,
            "query": request.GET.urlencode(),
        },
    )


@control_area(permission=Permission.VIEW_REPORTS)
@require_GET
def activity_csv(request: HttpRequest) -> StreamingHttpResponse:
    user = _user(request)
    form = ActivityFilterForm(request.GET or None)
    rows = activity_export(user=user, wanted=form.event_filter(), request=request)
    return csv_download(rows, name="activity")


@signed_in
@require_GET
def my_logins(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "audit/my_logins.html",
        {"events": login_history(_user(request))[:PAGE_SIZE]},
    )
