from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Q, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tmc.accounts.models import Organisation
from tmc.audit.services import EventFilter, events_for_organisation
from tmc.boomerang.models import Ticket, VirtualNumber
from tmc.boomerang.services import number_retire, numbers_add
from tmc.formerrors import form_errors_add
from tmc.gateways.models import GatewayProvider
from tmc.gateways.providers import SECRET_FIELDS, provider_credentials
from tmc.gateways.smpp.models import SmppBindStatus
from tmc.identity.models import User
from tmc.identity.policy import platform_policy
from tmc.lib.phone import format_international, mask_number
from tmc.messaging.models import InboundMessage, Message
from tmc.routing.models import GatewayHealth, Route
from tmc.routing.throughput import gateway_rate
from tmc.staff.access import (
    clear_cookie,
    current,
    member_of,
    set_cookie,
    staff_public,
    staff_view,
)
from tmc.staff.forms import (
    CreditsForm,
    HttpProviderForm,
    PackageForm,
    ReasonForm,
    RouteForm,
    SmppProviderForm,
    StaffLevelForm,
    StaffLoginForm,
    StaffMemberForm,
    StaffNewSecondPasswordForm,
    StaffPasswordForm,
    StaffSecondPasswordForm,
    VirtualNumbersForm,
    VonageProviderForm,
)
from tmc.staff.levels import MINIMUM_LEVEL, Capability, Level, may
from tmc.staff.models import StaffAccess, StaffMember
from tmc.staff.services import (
    access_current,
    access_open,
    access_record,
    client_user_unlock,
    credits_adjust,
    full_number_reveal,
    organisation_suspend,
    package_change,
    staff_create,
    staff_gateway_provider_save,
    staff_gateway_reset,
    staff_level_set,
    staff_login,
    staff_password_change,
    staff_route_delete,
    staff_route_set,
    staff_second_factor,
    staff_second_password_set,
    staff_session_end,
    staff_session_start,
    staff_unlock,
)


def _render(
    request: HttpRequest, template: str, context: dict[str, Any]
) -> HttpResponse:
    member = getattr(request, "staff", None)
    return render(
        request,
        f"staff/{template}",
        {
            "member": member,
            "idle_seconds": platform_policy().idle_minutes * 60,
            **context,
        },
    )


# --- signing in ------------------------------------------------------------------


@staff_public
@require_http_methods(["GET", "POST"])
def login(request: HttpRequest) -> HttpResponse:
    form = StaffLoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        member, error = staff_login(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
            request=request,
        )
        if member is None:
            form.add_error(None, error)
        else:
            response = redirect("staff:second_password")
            set_cookie(response, staff_session_start(member, request))
            return response
    return _render(request, "login.html", {"form": form})


@staff_view(None, stage="password")
@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    session = current(request)
    if session is not None:
        staff_session_end(session, reason="logout")
    response = redirect("staff:login")
    clear_cookie(response)
    return response


@staff_view(None, stage="password")
@require_http_methods(["GET", "POST"])
def second_password(request: HttpRequest) -> HttpResponse:
    member = member_of(request)
    session = request.staff_session  # type: ignore[attr-defined]
    if not member.second_password:
        new_form = StaffNewSecondPasswordForm(request.POST or None)
        if request.method == "POST" and new_form.is_valid():
            try:
                staff_second_password_set(
                    member=member,
                    new=new_form.cleaned_data["new_second_password"],
                    request=request,
                )
            except ValidationError as exc:
                form_errors_add(new_form, exc)
            else:
                staff_second_factor(
                    session=session,
                    attempt=new_form.cleaned_data["new_second_password"],
                    request=request,
                )
                return redirect("staff:home")
        return _render(request, "second_password.html", {"form": new_form, "new": True})

    form = StaffSecondPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if staff_second_factor(
            session=session,
            attempt=form.cleaned_data["second_password"],
            request=request,
        ):
            return redirect("staff:home")
        form.add_error("second_password", "That second password is not right.")
    return _render(request, "second_password.html", {"form": form, "new": False})


@staff_view(None, stage="expired")
@require_http_methods(["GET", "POST"])
def password(request: HttpRequest) -> HttpResponse:
    member = member_of(request)
    form = StaffPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            staff_password_change(
                member=member,
                current=form.cleaned_data["current_password"],
                new=form.cleaned_data["new_password"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Your password has been changed.")
            return redirect("staff:home")
    max_age = platform_policy().staff_password_max_age_days
    return _render(request, "password.html", {"form": form, "max_age": max_age})


# --- organisations -----------------------------------------------------------------


@staff_view(Capability.FIND_ORGANISATIONS)
@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    organisations = Organisation.objects.select_related("package").order_by("name")
    if query:
        organisations = organisations.filter(name__icontains=query)
    return _render(
        request,
        "home.html",
        {"organisations": organisations[:100], "query": query},
    )


def _organisation(organisation_id: int) -> Organisation:
    found = Organisation.objects.select_related("package").filter(pk=organisation_id)
    organisation = found.first()
    if organisation is None:
        raise Http404("No such organisation.")
    return organisation


def _window(request: HttpRequest, organisation: Organisation) -> StaffAccess | None:
    return access_current(member_of(request), organisation)


@staff_view(Capability.FIND_ORGANISATIONS)
@require_http_methods(["GET", "POST"])
def access(request: HttpRequest, organisation_id: int) -> HttpResponse:
    organisation = _organisation(organisation_id)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            access_open(
                member=member_of(request),
                organisation=organisation,
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            return redirect("staff:organisation", organisation_id=organisation.pk)
    return _render(request, "access.html", {"form": form, "organisation": organisation})


# The newest events of the organisation's activity log on its staff page.
ACTIVITY_ROWS = 50


def _organisation_page(
    request: HttpRequest,
    organisation: Organisation,
    window: StaffAccess,
    *,
    revealed: dict[int, str] | None = None,
    package_form: PackageForm | None = None,
) -> HttpResponse:
    member = member_of(request)
    since = timezone.now() - timedelta(days=30)
    recent = Message.objects.for_organisation(organisation)
    usage = recent.filter(created_at__gte=since).aggregate(
        messages=Count("id"),
        credits=Sum("credits"),
        delivered=Count("id", filter=Q(status=Message.Status.DELIVERED)),
    )
    return _render(
        request,
        "organisation.html",
        {
            "organisation": organisation,
            "window": window,
            "usage": usage,
            "users": User.objects.filter(organisation=organisation).order_by(
                "username"
            ),
            "recent": recent.select_related("created_by")[:20],
            "ledger": organisation.ledger.all()[:10],
            # The organisation's whole log, newest first; this very view is
            # already on it as staff.page_viewed.
            "events": events_for_organisation(organisation, EventFilter())[
                :ACTIVITY_ROWS
            ],
            "revealed": revealed or {},
            "credits_form": CreditsForm(),
            "package_form": package_form
            or PackageForm(initial={"package": organisation.package}),
            "can": {cap.name.lower(): may(member.level, cap) for cap in Capability},
        },
    )


@staff_view(Capability.FIND_ORGANISATIONS)
@require_http_methods(["GET"])
def organisation(request: HttpRequest, organisation_id: int) -> HttpResponse:
    organisation = _organisation(organisation_id)
    window = _window(request, organisation)
    if window is None:
        return redirect("staff:access", organisation_id=organisation.pk)
    access_record(
        access=window,
        action="staff.page_viewed",
        details={"page": request.path},
        request=request,
    )
    return _organisation_page(request, organisation, window)


def _in_window(request: HttpRequest, organisation_id: int) -> StaffAccess | None:
    window = _window(request, _organisation(organisation_id))
    if window is None:
        messages.error(request, "Your access window has closed: state a reason again.")
    return window


@staff_view(Capability.ADJUST_CREDITS)
@require_POST
def credits(request: HttpRequest, organisation_id: int) -> HttpResponse:
    window = _in_window(request, organisation_id)
    if window is None:
        return redirect("staff:access", organisation_id=organisation_id)
    form = CreditsForm(request.POST)
    if form.is_valid():
        try:
            entry = credits_adjust(
                access=window,
                amount=form.cleaned_data["amount"],
                reason=form.cleaned_data["reason"],
                request=request,
                purchase=form.cleaned_data["purchase"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"Balance is now {entry.balance_after}.")
    else:
        messages.error(request, "Give an amount and a reason.")
    return redirect("staff:organisation", organisation_id=organisation_id)


@staff_view(Capability.CHANGE_PACKAGE)
@require_POST
def package(request: HttpRequest, organisation_id: int) -> HttpResponse:
    window = _in_window(request, organisation_id)
    if window is None:
        return redirect("staff:access", organisation_id=organisation_id)
    form = PackageForm(request.POST)
    if form.is_valid():
        try:
            package_change(
                access=window,
                package=form.cleaned_data["package"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Package changed.")
            return redirect("staff:organisation", organisation_id=organisation_id)
    # The page again, with the form's errors beside its fields.
    return _organisation_page(request, window.organisation, window, package_form=form)


@staff_view(Capability.SUSPEND_ORGANISATIONS)
@require_POST
def suspend(request: HttpRequest, organisation_id: int) -> HttpResponse:
    window = _in_window(request, organisation_id)
    if window is None:
        return redirect("staff:access", organisation_id=organisation_id)
    suspending = request.POST.get("suspend") == "1"
    organisation_suspend(access=window, suspend=suspending, request=request)
    messages.success(
        request, "Organisation suspended." if suspending else "Organisation reinstated."
    )
    return redirect("staff:organisation", organisation_id=organisation_id)


@staff_view(Capability.UNLOCK_USERS)
@require_POST
def user_unlock(
    request: HttpRequest, organisation_id: int, user_id: int
) -> HttpResponse:
    window = _in_window(request, organisation_id)
    if window is None:
        return redirect("staff:access", organisation_id=organisation_id)
    user = User.objects.filter(pk=user_id, organisation_id=organisation_id).first()
    if user is None:
        raise Http404("No such user in this organisation.")
    client_user_unlock(access=window, user=user, request=request)
    messages.success(request, f"{user.username} is unlocked.")
    return redirect("staff:organisation", organisation_id=organisation_id)


@staff_view(Capability.VIEW_FULL_NUMBERS)
@require_POST
def message_number(
    request: HttpRequest, organisation_id: int, message_id: int
) -> HttpResponse:
    window = _in_window(request, organisation_id)
    if window is None:
        return redirect("staff:access", organisation_id=organisation_id)
    message = (
        Message.objects.for_organisation(window.organisation)
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        raise Http404("No such message in this organisation.")
    number = full_number_reveal(
        access=window, number=message.recipient, source=message, request=request
    )
    return _organisation_page(
        request,
        window.organisation,
        window,
        revealed={message.pk: format_international(number)},
    )


# --- staff members -------------------------------------------------------------------


@staff_view(Capability.MANAGE_STAFF)
@require_http_methods(["GET", "POST"])
def members(request: HttpRequest) -> HttpResponse:
    actor = member_of(request)
    form = StaffMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = staff_create(actor=actor, request=request, **form.cleaned_data)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"{created.username} can now log in.")
            return redirect("staff:members")
    return _render(
        request,
        "members.html",
        {
            "form": form,
            "members": StaffMember.objects.all(),
            "level_form": StaffLevelForm(),
        },
    )


def _member(member_id: int) -> StaffMember:
    found = StaffMember.objects.filter(pk=member_id).first()
    if found is None:
        raise Http404("No such staff member.")
    return found


@staff_view(Capability.MANAGE_STAFF)
@require_POST
def member_level(request: HttpRequest, member_id: int) -> HttpResponse:
    form = StaffLevelForm(request.POST)
    if form.is_valid():
        staff_level_set(
            actor=member_of(request),
            member=_member(member_id),
            level=form.cleaned_data["level"],
            request=request,
        )
        messages.success(request, "Level changed.")
    return redirect("staff:members")


@staff_view(Capability.MANAGE_STAFF)
@require_POST
def member_unlock(request: HttpRequest, member_id: int) -> HttpResponse:
    staff_unlock(actor=member_of(request), member=_member(member_id), request=request)
    messages.success(request, "Unlocked.")
    return redirect("staff:members")


# --- routes --------------------------------------------------------------------


@staff_view(Capability.MANAGE_GATEWAYS)
@require_http_methods(["GET", "POST"])
def routes(request: HttpRequest) -> HttpResponse:
    form = RouteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            route = staff_route_set(
                actor=member_of(request),
                prefix=form.cleaned_data["destination"],
                gateways=form.cleaned_data["gateways"],
                request=request,
            )
        except ValidationError as exc:
            problems = exc.message_dict
            problems["destination"] = problems.pop("prefix", [])
            form_errors_add(form, ValidationError(problems))
        else:
            messages.success(request, f"Route {route} saved.")
            return redirect("staff:routes")

    now = timezone.now()
    all_routes = list(Route.objects.all())
    health = {row.name: row for row in GatewayHealth.objects.all()}
    names = sorted({n for route in all_routes for n in route.gateways} | set(health))
    gateways = []
    for name in names:
        row = health.get(name)
        down_until = row.down_until if row is not None else None
        gateways.append(
            {
                "name": name,
                "rate": gateway_rate(name),
                "failures": row.total_failures if row is not None else 0,
                "down_until": down_until if down_until and down_until > now else None,
            }
        )
    return _render(
        request,
        "routes.html",
        {"form": form, "routes": all_routes, "gateways": gateways},
    )


@staff_view(Capability.MANAGE_GATEWAYS)
@require_POST
def route_delete(request: HttpRequest) -> HttpResponse:
    prefix = request.POST.get("prefix", "")
    if staff_route_delete(actor=member_of(request), prefix=prefix, request=request):
        messages.success(request, "Route deleted.")
    return redirect("staff:routes")


@staff_view(Capability.MANAGE_GATEWAYS)
@require_POST
def gateway_reset(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("gateway", "")
    staff_gateway_reset(actor=member_of(request), name=name, request=request)
    messages.success(request, f"{name} is back in service.")
    return redirect("staff:routes")


# --- gateway providers ------------------------------------------------------------

ProviderForm = SmppProviderForm | HttpProviderForm | VonageProviderForm
PROVIDER_FORMS: dict[str, type[ProviderForm]] = {
    GatewayProvider.Kind.SMPP: SmppProviderForm,
    GatewayProvider.Kind.HTTP: HttpProviderForm,
    GatewayProvider.Kind.VONAGE: VonageProviderForm,
}
# A bind that has not written its status for this long is not running.
BIND_SILENT_AFTER = timedelta(seconds=30)


@staff_view(Capability.MANAGE_GATEWAYS)
@require_GET
def gateways(request: HttpRequest) -> HttpResponse:
    """Every provider with its health: binds, back-off, rates, last error."""
    now = timezone.now()
    providers = list(GatewayProvider.objects.all())
    health = {row.name: row for row in GatewayHealth.objects.all()}
    binds: dict[str, list[SmppBindStatus]] = {}
    for bind in SmppBindStatus.objects.all():
        bind.silent = bind.heartbeat_at < now - BIND_SILENT_AFTER  # type: ignore[attr-defined]
        binds.setdefault(bind.gateway, []).append(bind)
    names = [p.name for p in providers]
    # Binds of the environment-configured SMPP gateway have no provider row.
    names += sorted(set(binds) - set(names))
    by_name = {p.name: p for p in providers}
    rows = []
    for name in names:
        row = health.get(name)
        down_until = row.down_until if row is not None else None
        name_binds = binds.get(name, [])
        rows.append(
            {
                "name": name,
                "provider": by_name.get(name),
                "rate": gateway_rate(name),
                "sending_rate": sum(b.rate for b in name_binds if b.state == "bound"),
                "failures": row.total_failures if row is not None else 0,
                "last_error": row.last_error if row is not None else "",
                "last_failure_at": row.last_failure_at if row is not None else None,
                "down_until": down_until if down_until and down_until > now else None,
                "binds": name_binds,
            }
        )
    return _render(
        request,
        "gateways.html",
        {"rows": rows, "kinds": GatewayProvider.Kind.choices},
    )


def _provider_form_save(
    request: HttpRequest,
    form: ProviderForm,
    *,
    kind: str,
    provider: GatewayProvider | None,
) -> GatewayProvider | None:
    try:
        return staff_gateway_provider_save(
            actor=member_of(request),
            provider=provider,
            kind=kind,
            name=form.cleaned_data["name"],
            enabled=form.cleaned_data["enabled"],
            throughput=form.cleaned_data["throughput"],
            settings=form.provider_settings(),
            secrets=form.provider_secrets(),
            request=request,
        )
    except ValidationError as exc:
        form_errors_add(form, exc)
        return None


@staff_view(Capability.MANAGE_GATEWAYS)
@require_http_methods(["GET", "POST"])
def gateway_new(request: HttpRequest, kind: str) -> HttpResponse:
    form_class = PROVIDER_FORMS.get(kind)
    if form_class is None:
        raise Http404("No such kind of provider.")
    form = form_class(request.POST or None, stored=set())
    if request.method == "POST" and form.is_valid():
        saved = _provider_form_save(request, form, kind=kind, provider=None)
        if saved is not None:
            messages.success(request, f"Provider {saved.name} added.")
            return redirect("staff:gateways")
    return _render(
        request,
        "gateway_form.html",
        {"form": form, "kind": GatewayProvider.Kind(kind).label, "provider": None},
    )


@staff_view(Capability.MANAGE_GATEWAYS)
@require_http_methods(["GET", "POST"])
def gateway_edit(request: HttpRequest, provider_id: int) -> HttpResponse:
    provider = GatewayProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise Http404("No such provider.")
    form_class = PROVIDER_FORMS[provider.kind]
    stored = {k for k, v in provider_credentials(provider).items() if v}
    initial = {
        "name": provider.name,
        "enabled": provider.enabled,
        "throughput": provider.throughput,
        **{
            k: v
            for k, v in provider.settings.items()
            if k not in SECRET_FIELDS[provider.kind]
        },
    }
    if isinstance(initial.get("field_names"), dict):
        initial["field_names"] = ",".join(
            f"{ours}={theirs}" for ours, theirs in initial["field_names"].items()
        )
    form = form_class(request.POST or None, initial=initial, stored=stored)
    if request.method == "POST" and form.is_valid():
        saved = _provider_form_save(
            request, form, kind=provider.kind, provider=provider
        )
        if saved is not None:
            messages.success(request, f"Provider {saved.name} saved.")
            return redirect("staff:gateways")
    return _render(
        request,
        "gateway_form.html",
        {"form": form, "kind": provider.get_kind_display(), "provider": provider},
    )


@staff_view(None)
@require_http_methods(["GET"])
def levels(request: HttpRequest) -> HttpResponse:
    table = [
        (capability.value, [level >= MINIMUM_LEVEL[capability] for level in Level])
        for capability in Capability
    ]
    return _render(request, "levels.html", {"table": table, "levels": list(Level)})


@staff_view(None, stage="password")
@require_POST
def keepalive(request: HttpRequest) -> HttpResponse:
    """The idle warning's "stay logged in" for staff pages."""
    return HttpResponse(status=204)


# --- reply numbers and unmatched replies ------------------------------------------


@staff_view(Capability.MANAGE_GATEWAYS)
@require_http_methods(["GET", "POST"])
def numbers(request: HttpRequest) -> HttpResponse:
    """The virtual number pools: add to one, retire from one."""
    actor = member_of(request)
    form = VirtualNumbersForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = numbers_add(
                numbers=form.cleaned_data["numbers"],
                organisation=form.cleaned_data["organisation"],
                actor_label=f"staff:{actor.label}",
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"{len(added)} number(s) added.")
            return redirect("staff:numbers")
    pool = (
        VirtualNumber.objects.select_related("organisation")
        .annotate(
            open_tickets=Count("tickets", filter=Q(tickets__status=Ticket.Status.OPEN))
        )
        .order_by("organisation_id", "position", "id")
    )
    return _render(request, "numbers.html", {"form": form, "pool": pool})


@staff_view(Capability.MANAGE_GATEWAYS)
@require_POST
def number_retire_view(request: HttpRequest, number_id: int) -> HttpResponse:
    actor = member_of(request)
    found = VirtualNumber.objects.filter(pk=number_id).first()
    if found is None:
        raise Http404("No such number.")
    try:
        number_retire(
            number=found.number, actor_label=f"staff:{actor.label}", request=request
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"{found.number} is retired.")
    return redirect("staff:numbers")


@staff_view(Capability.FIND_ORGANISATIONS)
@require_GET
def unmatched(request: HttpRequest) -> HttpResponse:
    """Texts that answered no conversation, kept rather than lost.

    The sender's number shows in full only to staff who may see numbers.
    """
    member = member_of(request)
    full = may(member.level, Capability.VIEW_FULL_NUMBERS)
    # Texts still waiting to be matched have no organisation yet either.
    received = InboundMessage.objects.filter(
        organisation__isnull=True, matched_at__isnull=False
    )[:100]
    rows = [
        (
            inbound,
            format_international(inbound.sender)
            if full
            else mask_number(inbound.sender),
        )
        for inbound in received
    ]
    return _render(request, "unmatched.html", {"rows": rows})
