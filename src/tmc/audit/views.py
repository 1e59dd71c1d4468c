from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tmc.audit.models import Event
from tmc.identity.access import control_area
from tmc.identity.models import Permission, User

PAGE_SIZE = 100


@control_area(permission=Permission.VIEW_REPORTS)
@require_GET
def activity(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    events = Event.objects.for_user(user).select_related("actor")
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    return render(
        request,
        "audit/activity.html",
        {"events": events[:PAGE_SIZE], "action": action},
    )
