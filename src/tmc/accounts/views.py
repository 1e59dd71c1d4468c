from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tmc.identity.access import signed_in
from tmc.identity.models import User
from tmc.messaging.models import Message


@signed_in
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    organisation = user.organisation
    by_status = dict(
        Message.objects.for_user(user)
        .values_list("status")
        .annotate(total=Count("id"))
        .values_list("status", "total")
    )
    status_counts = [
        (label, by_status.get(value, 0)) for value, label in Message.Status.choices
    ]
    return render(
        request,
        "accounts/dashboard.html",
        {
            "organisation": organisation,
            "status_counts": status_counts,
            "total_messages": sum(by_status.values()),
            "recent": Message.objects.for_user(user)[:5],
        },
    )
