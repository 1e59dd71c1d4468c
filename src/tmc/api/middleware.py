"""The API's one error shape for paths and methods it does not have.

Django answers an unknown path with its HTML 404 page, and django-ninja a
method a path does not take with a plain-text 405, before any of the API's
exception handlers can run. Under /api/ both become JSON errors here, so a
client parses every error the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tmc.api.errors import error_response

PREFIX = "/api/"


class ApiErrorsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(PREFIX) or response.status_code not in {
            404,
            405,
        }:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response  # already in the API's shape
        if response.status_code == 405:
            answer = error_response(
                "method_not_allowed",
                f"This path does not take {request.method}.",
                headers={"Allow": response.get("Allow", "")},
            )
        else:
            answer = error_response("not_found", "No API operation at this path.")
        # The middleware listed before this one (the request id, the
        # security headers) add their headers to this new response.
        return answer
