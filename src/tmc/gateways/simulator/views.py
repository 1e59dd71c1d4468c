"""The simulator's handsets, for a person to act as the phones.

Available only while the simulator carries the messages. A user sees the
handsets their own organisation texted, and replies as one of them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from tmc.accounts.scoping import get_for_user_or_404
from tmc.boomerang.forms import SimulatedReplyForm
from tmc.gateways.simulator.adapter import NAME
from tmc.gateways.simulator.services import handset_reply
from tmc.identity.access import signed_in
from tmc.identity.models import User
from tmc.messaging.models import Message

RECENT = 30


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _simulator_only() -> None:
    if settings.TMC_GATEWAY != NAME:
        raise Http404("The gateway simulator is not in use.")


@signed_in
@require_GET
def handsets(request: HttpRequest) -> HttpResponse:
    _simulator_only()
    sent = (
        Message.objects.for_user(_user(request))
        .filter(gateway=NAME)
        .select_related("created_by")[:RECENT]
    )
    return render(
        request,
        "simulator/handsets.html",
        {"sent": sent, "form": SimulatedReplyForm()},
    )


@signed_in
@require_POST
def reply(request: HttpRequest, message_id: int) -> HttpResponse:
    """The handset that received ``message_id`` texts back to its sender."""
    _simulator_only()
    message = get_for_user_or_404(Message, _user(request), pk=message_id, gateway=NAME)
    form = SimulatedReplyForm(request.POST)
    if form.is_valid():
        handset_reply(
            handset_number=message.recipient,
            to=message.sender,
            body=form.cleaned_data["body"],
        )
        messages.success(request, f"The handset replied to message {message.pk}.")
    else:
        messages.error(request, "Type the reply first.")
    return redirect("simulator:handsets")
