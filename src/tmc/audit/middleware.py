"""Give every request an id, so its events and log lines can be found together."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from tmc.audit.services import REQUEST_ID

HEADER = "X-Request-ID"
# What a proxy or load balancer may pass on: letters, digits and a few
# separators, short. Anything else is replaced, so a client cannot inject
# text into the log or the response header.
WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def request_id_for(request: HttpRequest) -> str:
    offered = request.headers.get(HEADER, "")
    if WELL_FORMED.match(offered):
        return offered
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Assign the request id, make it current for ``event_record``, echo it.

    Runs first, so every event recorded while the request is answered,
    including by other middleware, carries the id.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]
        token = REQUEST_ID.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            REQUEST_ID.reset(token)
        response[HEADER] = request_id
        return response
