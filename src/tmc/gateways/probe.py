"""One text through one named gateway, for operators checking a provider.

``tmc gateway test`` uses it. The text is an ordinary message of the chosen
organisation (sent by its Controller, checked like any text, free of charge,
in its history and activity log), handed to the named gateway directly
rather than through the routes: a provider in back-off, or on no route yet,
can be tried before traffic goes to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.gateways.base import GatewayError, Submission
from tmc.gateways.registry import gateway_named
from tmc.identity.models import Role, User
from tmc.messaging.models import Message
from tmc.messaging.services import message_close, message_compose, message_create

logger = logging.getLogger(__name__)


class ProbeError(Exception):
    """The test text could not be sent; the message says why."""


def probe_send(
    *, gateway_name: str, organisation: Organisation, recipient: str, text: str
) -> Message:
    """Send ``text`` to ``recipient`` through ``gateway_name`` only.

    Raises ProbeError for a gateway name no adapter answers to, an
    organisation without an active Controller, or a text the organisation
    could not send (its message names the field); a gateway that refuses the
    text leaves the message failed with the gateway's reason.
    """
    from django.core.exceptions import ImproperlyConfigured, ValidationError

    try:
        gateway = gateway_named(gateway_name)
    except ImproperlyConfigured as exc:
        raise ProbeError(str(exc)) from exc
    user = (
        User.objects.filter(
            organisation=organisation, role=Role.CONTROLLER, is_active=True
        )
        .order_by("pk")
        .first()
    )
    if user is None:
        raise ProbeError(f"{organisation.name} has no active Controller to send as.")

    try:
        composed = message_compose(user=user, recipient=recipient, body=text)
    except ValidationError as exc:
        problems = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise ProbeError(problems) from exc
    with transaction.atomic():
        message = message_create(
            user=user,
            composed=composed,
            charge=False,
            details={"gateway_test": gateway_name},
        )
        # Claimed before the dispatch task queued on commit can see it: that
        # task finds it not queued and leaves it to this gateway alone.
        Message.objects.filter(pk=message.pk).update(
            status=Message.Status.SUBMITTING,
            submitting_since=timezone.now(),
            gateway=gateway.name,
        )

    submission = Submission(
        message_id=message.pk,
        sender=composed.sender,
        recipient=composed.recipient,
        body=composed.body,
        encoding=composed.segments.encoding,
        parts=composed.segments.parts,
    )
    try:
        with transaction.atomic():
            result = gateway.submit(submission)
            if not result.pending:
                Message.objects.filter(
                    pk=message.pk, status=Message.Status.SUBMITTING
                ).update(
                    status=Message.Status.SUBMITTED,
                    provider_message_id=result.provider_message_id,
                    submitted_at=timezone.now(),
                )
    except GatewayError as exc:
        message_close(
            message_id=message.pk, status=Message.Status.FAILED, reason=exc.reason
        )
    logger.info("gateway test sent message_id=%s gateway=%s", message.pk, gateway.name)
    message.refresh_from_db()
    return message


@dataclass(frozen=True)
class ProbeOutcome:
    status: str
    reason: str
    seconds: float

    @property
    def delivered(self) -> bool:
        return self.status == Message.Status.DELIVERED


def probe_wait(
    *,
    message_id: int,
    timeout: float,
    poll_seconds: float = 0.25,
    progress: Callable[[str], None] | None = None,
) -> ProbeOutcome:
    """Wait until the message is final (its delivery report) or ``timeout``."""
    start = time.monotonic()
    seen = ""
    while True:
        message = Message.objects.only("status", "failure_reason").get(pk=message_id)
        if message.status != seen and progress is not None:
            progress(message.status)
        seen = message.status
        elapsed = time.monotonic() - start
        if message.is_final or elapsed >= timeout:
            return ProbeOutcome(message.status, message.failure_reason, elapsed)
        time.sleep(poll_seconds)
