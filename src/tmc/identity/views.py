from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.audit.services import event_record
from tmc.formerrors import form_errors_add
from tmc.identity.access import control_area, public, second_factor_needed, signed_in
from tmc.identity.forms import (
    LoginForm,
    NewSecondPasswordForm,
    NotifyingPasswordResetForm,
    OrganisationSecurityForm,
    PasswordChangeForm,
    SecondFactorForm,
    TotpConfirmForm,
    UserForm,
)
from tmc.identity.models import Permission, RememberedDevice, Role, User, UserSession
from tmc.identity.policy import policy_for
from tmc.identity.services import (
    login_attempt,
    organisation_security_update,
    password_change,
    second_factor_verify,
    second_password_set,
    user_create,
    user_unlock,
    user_update,
)
from tmc.identity.sessions import (
    current_session,
    device_forget,
    device_remember,
    device_revoke,
    other_session_end,
    second_factor_grant,
    session_end,
    session_start,
)
from tmc.identity.totp import (
    qr_data_uri,
    totp_enrolment_confirm,
    totp_enrolment_start,
    totp_secret_for_display,
)
from tmc.lib.security_policy import ORGANISATION_ADJUSTABLE
from tmc.notifications.catalogue import Kind
from tmc.notifications.services import managers_of, notify


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


# --- log in and out ----------------------------------------------------------


@public
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_next(request, reverse("accounts:dashboard")))
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = login_attempt(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password"],
            request=request,
        )
        if result.user is None:
            form.add_error(None, result.error)
        else:
            session_start(request, result.user)
            response = redirect(_next(request, reverse("accounts:dashboard")))
            if form.cleaned_data["remember"]:
                device_remember(request, response, result.user)
            return response
    return render(
        request,
        "identity/login.html",
        {"form": form, "next": _next(request, "")},
        status=200,
    )


@signed_in
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    session_end(request, reason="logout")
    response = redirect("identity:login")
    # Logging out on purpose also forgets this device.
    device_forget(request, response)
    return response


@signed_in
@require_POST
def keepalive(request: HttpRequest) -> HttpResponse:
    """The idle warning's "stay logged in": any request counts as activity."""
    return HttpResponse(status=204)


# --- second password -----------------------------------------------------------


@signed_in
@require_http_methods(["GET", "POST"])
def second_factor(request: HttpRequest) -> HttpResponse:
    """Open the control areas: set up, then ask for, what the policy needs."""
    user = _user(request)
    if not user.is_manager:
        messages.error(request, "Control areas are for Controllers and Administrators.")
        return redirect("accounts:dashboard")
    destination = _next(request, reverse("identity:users"))
    policy = policy_for(user.organisation)
    if not second_factor_needed(user):
        return redirect(destination)
    if policy.second_password_required and not user.second_password:
        return _second_password_first_time(request, user, destination)
    if policy.totp_required and user.totp_confirmed_at is None:
        return _totp_enrolment(request, user, destination)

    form = SecondFactorForm(
        request.POST or None,
        needs_password=policy.second_password_required,
        needs_code=policy.totp_required,
    )
    locked = user.second_password_locked_at is not None
    if request.method == "POST" and form.is_valid() and not locked:
        if second_factor_verify(
            user=user,
            password=form.cleaned_data.get("second_password"),
            code=form.cleaned_data.get("code"),
            request=request,
        ):
            second_factor_grant(request)
            return redirect(destination)
        locked = user.second_password_locked_at is not None
        form.add_error(
            None,
            _wrong_second_factor(policy.totp_required, policy.second_password_required),
        )
    return render(
        request,
        "identity/second_password.html",
        {"form": form, "next": destination, "locked": locked},
    )


def _wrong_second_factor(code: bool, password: bool) -> str:
    if code and password:
        return "The second password or the code is not right."
    if code:
        return "That code is not right, or was used already."
    return "That second password is not right."


def _second_password_first_time(
    request: HttpRequest, user: User, destination: str
) -> HttpResponse:
    form = NewSecondPasswordForm(request.POST or None, needs_current=False)
    if request.method == "POST" and form.is_valid():
        try:
            second_password_set(
                user=user,
                new_password=form.cleaned_data["new_second_password"],
                current=None,
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Your second password is set.")
            if policy_for(user.organisation).totp_required:
                query = urlencode({"next": destination})
                return redirect(f"{reverse('identity:second_factor')}?{query}")
            second_factor_grant(request)
            return redirect(destination)
    return render(
        request,
        "identity/second_password_set.html",
        {"form": form, "next": destination, "first_time": True},
    )


def _totp_enrolment(request: HttpRequest, user: User, destination: str) -> HttpResponse:
    uri = totp_enrolment_start(user)
    form = TotpConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if totp_enrolment_confirm(user, form.cleaned_data["code"]):
            event_record(
                action="totp.enrolled", actor=user, target=user, request=request
            )
            second_factor_grant(request)
            messages.success(request, "Your authenticator app is set up.")
            return redirect(destination)
        form.add_error("code", "That code is not right. Check the phone's clock.")
    return render(
        request,
        "identity/totp_enrol.html",
        {
            "form": form,
            "next": destination,
            "qr": qr_data_uri(uri),
            "secret": totp_secret_for_display(user),
        },
    )


# --- my account --------------------------------------------------------------------


@signed_in
@require_http_methods(["GET", "POST"])
def password_change_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = PasswordChangeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            password_change(
                user=user,
                new_password=form.cleaned_data["new_password"],
                current_password=form.cleaned_data["current_password"],
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            # Keep this session; set_password changed the session hash.
            from django.contrib.auth import update_session_auth_hash

            update_session_auth_hash(request, user)
            request.session.cycle_key()
            messages.success(request, "Your password has been changed.")
            return redirect("identity:account")
    return render(request, "identity/password_change.html", {"form": form})


@signed_in
@require_http_methods(["GET", "POST"])
def second_password_change(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if not user.is_manager:
        return redirect("identity:account")
    form = NewSecondPasswordForm(
        request.POST or None, needs_current=bool(user.second_password)
    )
    if request.method == "POST" and form.is_valid():
        try:
            second_password_set(
                user=user,
                new_password=form.cleaned_data["new_second_password"],
                current=form.cleaned_data.get("current_second_password"),
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Your second password has been changed.")
            return redirect("identity:account")
    return render(
        request,
        "identity/second_password_set.html",
        {"form": form, "next": "", "first_time": False},
    )


@signed_in
@require_http_methods(["GET"])
def account(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    this = current_session(request)
    return render(
        request,
        "identity/account.html",
        {
            "sessions": user.sessions.filter(ended_at__isnull=True),
            "this_session": this,
            "devices": user.remembered_devices.filter(revoked_at__isnull=True),
            "policy": policy_for(user.organisation),
        },
    )


@signed_in
@require_POST
def session_end_view(request: HttpRequest, session_id: int) -> HttpResponse:
    user = _user(request)
    session = _own(
        UserSession.objects.filter(user=user, ended_at__isnull=True), session_id
    )
    other_session_end(user=user, session=session, request=request)
    messages.success(request, "That session has been ended.")
    return redirect("identity:account")


@signed_in
@require_POST
def device_revoke_view(request: HttpRequest, device_id: int) -> HttpResponse:
    user = _user(request)
    device = _own(RememberedDevice.objects.filter(user=user), device_id)
    device_revoke(actor=user, device=device, request=request)
    messages.success(request, "That device is forgotten.")
    return redirect("identity:account")


def _own(queryset: QuerySet[Any], pk: int) -> Any:
    from django.http import Http404

    found = queryset.filter(pk=pk).first()
    if found is None:
        raise Http404("Not found.")
    return found


# --- users (control area) ---------------------------------------------------------


@control_area()
@require_http_methods(["GET"])
def users(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    # The list is also where a Controller unlocks, which needs no "create
    # users"; such a Controller sees the list without the links to change it.
    if not user.can_create_users and user.role != Role.CONTROLLER:
        raise PermissionDenied("Your permissions do not include this.")
    return render(
        request,
        "identity/users.html",
        {
            "users": User.objects.filter(organisation=user.organisation).order_by(
                "username"
            )
        },
    )


@control_area(permission=Permission.CREATE_USERS)
@require_http_methods(["GET", "POST"])
def user_new(request: HttpRequest) -> HttpResponse:
    actor = _user(request)
    form = UserForm(request.POST or None, actor=actor, editing=None)
    if request.method == "POST" and form.is_valid():
        try:
            created = user_create(
                organisation=actor.organisation,
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=None,
                created_by=actor,
                changes=form.changes(),
                request=request,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(
                request,
                f"{created.username} has been created and emailed a link to "
                "choose a password.",
            )
            return redirect("identity:users")
    return render(request, "identity/user_form.html", {"form": form, "editing": None})


@control_area(permission=Permission.CREATE_USERS)
@require_http_methods(["GET", "POST"])
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = _user(request)
    target = get_for_user_or_404(User, actor, pk=user_id)
    form = UserForm(
        request.POST or None,
        actor=actor,
        editing=target,
        initial=UserForm.initial_for(target, viewer=actor),
    )
    if request.method == "POST" and form.is_valid():
        try:
            user_update(
                actor=actor, target=target, changes=form.changes(), request=request
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, f"{target.username} has been updated.")
            return redirect("identity:users")
    devices = target.remembered_devices.filter(revoked_at__isnull=True)
    return render(
        request,
        "identity/user_form.html",
        {"form": form, "editing": target, "devices": devices},
    )


# The policy gives unlocking to the organisation's Controller as such, so
# the "create users" permission, which restricts managing users, is not
# asked for here.
@control_area(controller_only=True)
@require_POST
def user_unlock_view(request: HttpRequest, user_id: int) -> HttpResponse:
    actor = _user(request)
    target = get_for_user_or_404(User, actor, pk=user_id)
    user_unlock(actor=actor, target=target, request=request)
    messages.success(request, f"{target.username} is unlocked.")
    return redirect("identity:users")


@control_area(permission=Permission.CREATE_USERS)
@require_POST
def user_device_revoke(
    request: HttpRequest, user_id: int, device_id: int
) -> HttpResponse:
    actor = _user(request)
    target = get_for_user_or_404(User, actor, pk=user_id)
    if target.role == Role.CONTROLLER and actor.role != Role.CONTROLLER:
        raise PermissionDenied("Only a Controller may change a Controller.")
    device = _own(RememberedDevice.objects.filter(user=target), device_id)
    device_revoke(actor=actor, device=device, request=request)
    messages.success(request, "That device is forgotten.")
    return redirect("identity:user_edit", user_id=target.pk)


@control_area(controller_only=True)
@require_http_methods(["GET", "POST"])
def organisation_security(request: HttpRequest) -> HttpResponse:
    actor = _user(request)
    in_force = policy_for(actor.organisation)
    initial = {name: getattr(in_force, name) for name in ORGANISATION_ADJUSTABLE}
    form = OrganisationSecurityForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            organisation_security_update(
                actor=actor, values=form.cleaned_data, request=request
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, "Security settings saved.")
            return redirect("identity:organisation_security")
    return render(
        request,
        "identity/organisation_security.html",
        {"form": form, "policy": in_force},
    )


# --- password reset (public) --------------------------------------------------------


class PasswordResetView(auth_views.PasswordResetView):
    form_class = NotifyingPasswordResetForm
    template_name = "identity/password_reset.html"
    email_template_name = "identity/password_reset_email.txt"
    html_email_template_name = "identity/password_reset_email.html"
    subject_template_name = "identity/password_reset_subject.txt"
    success_url = reverse_lazy("identity:password_reset_done")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        for user in getattr(form, "requested_for", []):
            event_record(
                action="password.reset_requested",
                actor=None,
                actor_label="anonymous",
                organisation=user.organisation,
                target=user,
                request=self.request,
            )
            notify(
                kind=Kind.PASSWORD_RESET_REQUESTED,
                recipients=[
                    m for m in managers_of(user.organisation) if m.pk != user.pk
                ],
                context={"user": user},
                link=reverse("identity:user_edit", kwargs={"user_id": user.pk}),
            )
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "identity/password_reset_confirm.html"
    success_url = reverse_lazy("identity:password_reset_complete")
    post_reset_login = False

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.user
        try:
            password_change(
                user=user,
                new_password=form.cleaned_data["new_password1"],
                current_password=None,
                request=self.request,
                reason="reset",
            )
        except ValidationError as exc:
            for problem in exc.message_dict.get("new_password", []):
                form.add_error("new_password2", problem)
            return self.form_invalid(form)
        del self.request.session[auth_views.INTERNAL_RESET_SESSION_TOKEN]
        return redirect(self.success_url)
