from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from tmc.accounts.forms import (
    SendingSettingsForm,
    VerificationCodeForm,
    VerifiedNumberForm,
)
from tmc.accounts.pricing import allowance_left, price_list, region_names
from tmc.accounts.scoping import get_for_user_or_404
from tmc.accounts.services import sending_settings_set
from tmc.formerrors import form_errors_add
from tmc.identity.access import control_area, signed_in
from tmc.identity.models import User
from tmc.messaging.models import Message, VerifiedNumber
from tmc.messaging.trial import (
    MAX_ATTEMPTS,
    verified_number_add,
    verified_number_confirm,
)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


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
    prices = price_list(organisation)
    country_prices = [
        (code, ", ".join(region_names(code)), price)
        for code, price in sorted(prices.by_code.items())
    ]
    return render(
        request,
        "accounts/dashboard.html",
        {
            "organisation": organisation,
            "status_counts": status_counts,
            "total_messages": sum(by_status.values()),
            "recent": Message.objects.for_user(user)[:5],
            "prices": prices,
            "country_prices": country_prices,
            "allowance_left": allowance_left(organisation, prices),
        },
    )


@signed_in
@require_http_methods(["GET", "POST"])
def verified_numbers(request: HttpRequest) -> HttpResponse:
    """The numbers a trial may text; adding one texts it a code."""
    user = _user(request)
    form = VerifiedNumberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            verified = verified_number_add(
                user=user, number=form.cleaned_data["number"], request=request
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            flash.success(request, "Code sent. Enter it below to verify the number.")
            return redirect("accounts:verified_number", number_id=verified.pk)
    return render(
        request,
        "accounts/verified_numbers.html",
        {
            "form": form,
            "numbers": VerifiedNumber.objects.for_user(user),
            "max_attempts": MAX_ATTEMPTS,
        },
    )


@signed_in
@require_http_methods(["GET", "POST"])
def verified_number(request: HttpRequest, number_id: int) -> HttpResponse:
    """Enter the code texted to one of the organisation's numbers."""
    user = _user(request)
    verified = get_for_user_or_404(VerifiedNumber, user, pk=number_id)
    form = VerificationCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            verified_number_confirm(
                user=user,
                verified=verified,
                code=form.cleaned_data["code"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            flash.success(request, "Number verified: you can text it now.")
            return redirect("accounts:verified_numbers")
    return render(
        request,
        "accounts/verified_number.html",
        {"form": form, "verified": verified, "max_attempts": MAX_ATTEMPTS},
    )


@control_area(controller_only=True)
@require_http_methods(["GET", "POST"])
def sending_settings(request: HttpRequest) -> HttpResponse:
    """The organisation's time zone, quiet hours and validity period."""
    user = _user(request)
    organisation = user.organisation
    form = SendingSettingsForm(
        request.POST or None,
        initial={
            "time_zone": organisation.time_zone,
            "quiet_start": organisation.quiet_start,
            "quiet_end": organisation.quiet_end,
            "validity_hours": organisation.message_validity_hours,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            sending_settings_set(
                actor=user,
                time_zone=form.cleaned_data["time_zone"],
                quiet_start=form.cleaned_data["quiet_start"],
                quiet_end=form.cleaned_data["quiet_end"],
                validity_hours=form.cleaned_data["validity_hours"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            flash.success(request, "Sending settings saved.")
            return redirect("accounts:sending_settings")
    return render(
        request,
        "accounts/sending_settings.html",
        {"form": form, "default_validity": settings.TMC_MESSAGE_VALIDITY_HOURS},
    )
