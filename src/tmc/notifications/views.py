from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.identity.access import control_area, signed_in
from tmc.identity.models import Role, User
from tmc.notifications.forms import LowCreditForm, PreferencesForm
from tmc.notifications.models import Notification
from tmc.notifications.services import (
    low_credit_threshold,
    low_credit_threshold_set,
    notifications_for,
    notifications_mark_read,
    preferences_for,
    preferences_save,
    unread_for,
)

PAGE_SIZE = 100
DESKTOP_BATCH = 5


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


@signed_in
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    return render(
        request,
        "notifications/inbox.html",
        {
            "notifications": notifications_for(user)[:PAGE_SIZE],
            "unread": unread_for(user).count(),
        },
    )


@signed_in
@require_GET
def bell(request: HttpRequest) -> HttpResponse:
    """The header's bell, polled in the background: count and pop-ups due."""
    user = _user(request)
    unread = unread_for(user)
    return render(
        request,
        "notifications/_bell.html",
        {
            "polled": True,
            "unread": unread.count(),
            "desktop": list(
                unread.filter(desktop=True).values("id", "title")[:DESKTOP_BATCH]
            ),
        },
    )


@signed_in
@require_POST
def read_all(request: HttpRequest) -> HttpResponse:
    notifications_mark_read(user=_user(request))
    return redirect("notifications:inbox")


@signed_in
@require_POST
def open_notification(request: HttpRequest, notification_id: int) -> HttpResponse:
    """Mark a notice read and go where it points (a path TMC wrote itself)."""
    user = _user(request)
    notice = get_for_user_or_404(Notification, user, pk=notification_id, recipient=user)
    notifications_mark_read(user=user, notification_id=notice.pk)
    if notice.link.startswith("/") and not notice.link.startswith("//"):
        return redirect(notice.link)
    return redirect("notifications:inbox")


@signed_in
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    # An empty POST is a real answer: every box unticked.
    form = PreferencesForm(
        preferences_for(user), request.POST if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        preferences_save(user=user, wanted=form.wanted())
        messages.success(request, "Notification preferences saved.")
        return redirect("notifications:preferences")
    return render(
        request,
        "notifications/preferences.html",
        {
            "form": form,
            "low_credit_form": LowCreditForm(
                initial={"threshold": low_credit_threshold(user.organisation)}
            )
            if user.role == Role.CONTROLLER
            else None,
        },
    )


@control_area(controller_only=True)
@require_POST
def low_credit(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = LowCreditForm(request.POST)
    if form.is_valid():
        low_credit_threshold_set(
            organisation=user.organisation,
            threshold=form.cleaned_data["threshold"],
            actor=user,
        )
        messages.success(request, "Low-credit alert level saved.")
        return redirect("notifications:preferences")
    return render(
        request,
        "notifications/preferences.html",
        {
            "form": PreferencesForm(preferences_for(user)),
            "low_credit_form": form,
        },
        status=400,
    )
