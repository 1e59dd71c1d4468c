"""Attach the acting user's organisation to every request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class OrganisationMiddleware:
    """Set ``request.organisation`` for a signed-in client user, else None.

    Views read client data only through that organisation (see
    ``tmc.accounts.scoping``), so it is resolved in one place.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        organisation = None
        if user.is_authenticated:
            organisation = getattr(user, "organisation", None)
        request.organisation = organisation  # type: ignore[attr-defined]
        return self.get_response(request)
