"""The access rule of every view, declared where the view is defined.

Each view carries exactly one rule, readable as ``view.tmc_access``; a test
walks every URL and fails on a view without one.

- ``public``: anyone, signed in or not (log-in, password reset, health).
- ``signed_in``: any client user with a live session.
- ``control_area``: Controllers and Administrators only, optionally with a
  permission or the Controller role, and only after the second password
  (or TOTP, per the policy) within its window. Remembered devices and API
  keys never reach these: both sign in without the second factor.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect
from django.urls import reverse

from tmc.identity.models import Permission, Role, User
from tmc.identity.policy import policy_for
from tmc.identity.sessions import second_factor_fresh, second_factor_touch

View = TypeVar("View", bound=Callable[..., HttpResponseBase])
ACCESS_ATTRIBUTE = "tmc_access"


def _mark(view: View, rule: str) -> View:
    setattr(view, ACCESS_ATTRIBUTE, rule)
    return view


def public(view: View) -> View:
    return _mark(view, "public")


def signed_in(view: View) -> View:
    return _mark(login_required(view), "signed-in")


def second_factor_needed(user: User) -> bool:
    policy = policy_for(user.organisation)
    return policy.second_password_required or policy.totp_required


def control_area(
    *, permission: Permission | None = None, controller_only: bool = False
) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            user = request.user
            if not isinstance(user, User):
                return redirect(
                    f"{reverse('identity:login')}?{urlencode({'next': request.path})}"
                )
            if not user.is_manager:
                raise PermissionDenied("Controllers and Administrators only.")
            if controller_only and user.role != Role.CONTROLLER:
                raise PermissionDenied("Controllers only.")
            if permission is not None and not user.has_permission(permission):
                raise PermissionDenied("Your permissions do not include this.")
            if second_factor_needed(user):
                if not second_factor_fresh(request):
                    query = urlencode({"next": request.get_full_path()})
                    return redirect(f"{reverse('identity:second_factor')}?{query}")
                if request.method != "GET" or not request.htmx:  # type: ignore[attr-defined]
                    second_factor_touch(request)
            return view(request, *args, **kwargs)

        rule = "control"
        if controller_only:
            rule += ":controller"
        if permission is not None:
            rule += f":{permission.value}"
        return _mark(cast(View, guarded), rule)

    return decorate
