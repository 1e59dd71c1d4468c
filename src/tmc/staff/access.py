"""Staff sign-in state and the access rule of every staff page.

Staff use their own cookie (``tmc_staff``, limited to /staff/), never the
client session, so one browser's client and staff identities cannot mix.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import redirect

from tmc.identity.access import ACCESS_ATTRIBUTE
from tmc.staff.levels import Capability, may
from tmc.staff.models import StaffMember, StaffSession
from tmc.staff.services import (
    staff_password_expired,
    staff_session_for,
    staff_session_touch,
)

COOKIE = "tmc_staff"
COOKIE_PATH = "/staff/"
View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def set_cookie(response: HttpResponseBase, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path=COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: HttpResponseBase) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, samesite="Strict")


def current(request: HttpRequest) -> StaffSession | None:
    token = request.COOKIES.get(COOKIE)
    return staff_session_for(token) if token else None


def member_of(request: HttpRequest) -> StaffMember:
    member = getattr(request, "staff", None)
    assert isinstance(member, StaffMember)
    return member


def staff_public(view: View) -> View:
    setattr(view, ACCESS_ATTRIBUTE, "staff:public")
    return view


def staff_view(
    capability: Capability | None = Capability.FIND_ORGANISATIONS,
    *,
    stage: str = "full",
) -> Callable[[View], View]:
    """Admit signed-in staff at the right stage, holding ``capability``.

    Stages: "password" (password given, second password not yet), "expired"
    (second password given; allowed even when the password must change),
    and "full" (everything, with a current password).
    """

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(
            request: HttpRequest, *args: Any, **kwargs: Any
        ) -> HttpResponseBase:
            session = current(request)
            if session is None:
                response = redirect("staff:login")
                clear_cookie(response)
                return response
            member = session.member
            request.staff = member  # type: ignore[attr-defined]
            request.staff_session = session  # type: ignore[attr-defined]
            if stage != "password" and not session.second_factor_done:
                return redirect("staff:second_password")
            if stage == "full" and staff_password_expired(member):
                return redirect("staff:password")
            if capability is not None and not may(member.level, capability):
                raise PermissionDenied(
                    f"Level {member.level} staff may not {capability.value}."
                )
            if request.headers.get("X-TMC-Background") != "1":
                staff_session_touch(session)
            return view(request, *args, **kwargs)

        rule = f"staff:{stage}"
        if capability is not None:
            rule += f":{capability.name.lower()}"
        setattr(guarded, ACCESS_ATTRIBUTE, rule)
        return cast(View, guarded)

    return decorate
