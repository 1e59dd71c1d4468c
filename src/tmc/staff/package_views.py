"""The staff console's Packages pages: packages, prices per country."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods, require_POST

from tmc.accounts.models import Package
from tmc.accounts.pricing import region_names
from tmc.formerrors import form_errors_add
from tmc.staff.access import member_of, staff_view
from tmc.staff.levels import Capability
from tmc.staff.package_forms import PackageForm, PackagePriceForm
from tmc.staff.packages import (
    staff_package_price_delete,
    staff_package_price_set,
    staff_package_save,
)
from tmc.staff.views import _render


def _package(package_id: int) -> Package:
    # Packages belong to the provider, not to an organisation.
    found = Package.objects.filter(pk=package_id).first()
    if found is None:
        raise Http404("No such package.")
    return found


@staff_view(Capability.MANAGE_PACKAGES)
@require_http_methods(["GET", "POST"])
def packages(request: HttpRequest) -> HttpResponse:
    form = PackageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            package = staff_package_save(
                actor=member_of(request),
                package=None,
                request=request,
                **form.cleaned_data,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"Package {package.name} created.")
            return redirect("staff:package_edit", package_id=package.pk)
    listed = Package.objects.annotate(
        price_count=Count("prices", distinct=True),
        organisation_count=Count("organisation", distinct=True),
    )
    return _render(request, "packages.html", {"form": form, "packages": listed})


@staff_view(Capability.MANAGE_PACKAGES)
@require_http_methods(["GET", "POST"])
def package_edit(request: HttpRequest, package_id: int) -> HttpResponse:
    package = _package(package_id)
    initial = {
        "name": package.name,
        "credits": package.credits,
        "credits_per_part": package.credits_per_part,
        "monthly_allowance": package.monthly_allowance,
    }
    posted = request.POST if "save_package" in request.POST else None
    form = PackageForm(posted, initial=initial)
    priced = request.POST if "set_price" in request.POST else None
    price_form = PackagePriceForm(priced)
    actor = member_of(request)
    if posted is not None and form.is_valid():
        try:
            staff_package_save(
                actor=actor, package=package, request=request, **form.cleaned_data
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Package saved.")
            return redirect("staff:package_edit", package_id=package.pk)
    if priced is not None and price_form.is_valid():
        try:
            price = staff_package_price_set(
                actor=actor, package=package, request=request, **price_form.cleaned_data
            )
        except ValidationError as exc:
            form_errors_add(price_form, exc)
        else:
            messages.success(request, f"Price for +{price.country_code} saved.")
            return redirect("staff:package_edit", package_id=package.pk)
    prices = [
        (price, ", ".join(region_names(price.country_code)))
        for price in package.prices.all()
    ]
    return _render(
        request,
        "package_edit.html",
        {
            "package": package,
            "form": form,
            "price_form": price_form,
            "prices": prices,
        },
    )


@staff_view(Capability.MANAGE_PACKAGES)
@require_POST
def package_price_delete(request: HttpRequest, package_id: int) -> HttpResponse:
    package = _package(package_id)
    code = request.POST.get("country_code", "")
    if staff_package_price_delete(
        actor=member_of(request), package=package, country_code=code, request=request
    ):
        messages.success(request, f"Price for +{code} removed.")
    return redirect("staff:package_edit", package_id=package.pk)
