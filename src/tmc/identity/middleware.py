"""Session rules on every request: device sign-in, idle timeout, no caching."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from tmc.identity.models import User
from tmc.identity.sessions import (
    DEVICE_COOKIE,
    device_cookie_set,
    device_login,
    enforce,
)

ENDED_MESSAGES = {
    "timeout": "You were logged out after a period without activity.",
    "ended": "This session was ended. Please log in again.",
    "disabled": "Your account cannot be used at the moment.",
}


class SessionSecurityMiddleware:
    """Runs after AuthenticationMiddleware.

    - A remembered device signs its user in (without the second password).
    - A session idle for longer than the policy allows, ended from another
      browser, or whose user was locked or deactivated, ends now; an htmx
      request is told to go to the log-in page, keeping the path to return to.
    - Pages for a signed-in user are never stored by browsers or proxies.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.user.is_authenticated and DEVICE_COOKIE in request.COOKIES:
            device_login(request)

        ended = enforce(request)
        if ended is not None:
            messages.info(request, ENDED_MESSAGES[ended])
            if request.htmx:  # type: ignore[attr-defined]
                query = urlencode({"next": request.headers.get("HX-Current-URL", "/")})
                response = HttpResponse(status=204)
                response["HX-Redirect"] = f"{reverse('identity:login')}?{query}"
                return response

        signed_in = request.user.is_authenticated
        response = self.get_response(request)
        renewed = getattr(request, "_tmc_renew_device", None)
        if renewed and isinstance(request.user, User):
            device_cookie_set(response, request.user, renewed)
        if signed_in or request.user.is_authenticated:
            response["Cache-Control"] = "no-store, private"
        return response
