"""The SMPP 3.4 provider, seen from dispatch.

Dispatch runs in the task workers, which must not each hold an SMPP session:
SMSCs allow few binds per account, and a window of outstanding submits needs
one connection that many messages share. So ``submit`` only queues the
message's parts in the database, and the ``tmc smpp`` worker, which holds the
bind, sends them and records what the SMSC answers (see ``bind.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import transaction

from tmc.gateways.base import BatchOutcome, GatewayError, Submission, SubmitResult
from tmc.gateways.smpp.models import SmppPart
from tmc.gateways.smpp.services import NAME, parts_queue_many

logger = logging.getLogger(__name__)


class SmppGateway:
    def __init__(self, name: str = NAME) -> None:
        self.name = name

    def submit(self, submission: Submission) -> SubmitResult:
        (outcome,) = self.submit_batch([submission])
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome

    def submit_batch(self, submissions: Sequence[Submission]) -> list[BatchOutcome]:
        """Queue the parts of every message it can take, in one INSERT."""
        outcomes: list[BatchOutcome] = []
        taken: list[Submission] = []
        for submission in submissions:
            if not submission.recipient.startswith("+"):
                outcomes.append(
                    GatewayError("destination is not in E.164 form", permanent=True)
                )
            elif submission.parts > 255:
                outcomes.append(
                    GatewayError(
                        "more parts than a concatenated SMS has", permanent=True
                    )
                )
            else:
                outcomes.append(SubmitResult(provider_message_id="", pending=True))
                taken.append(submission)

        with transaction.atomic():
            parts_queue_many(
                messages=[(s.message_id, s.parts) for s in taken], gateway=self.name
            )
        logger.info(
            "smpp queued messages=%s parts=%s",
            len(taken),
            sum(s.parts for s in taken),
        )
        return outcomes

    def lookup(self, message_id: int) -> str | None:
        """Whether the bind worker holds this message's parts.

        Its parts are queued in the same transaction that hands the message
        over, so parts mean the message was taken; their outcome is the bind
        worker's to record. The answer names the message, not an SMSC id: a
        message of several parts has one id per part.
        """
        if SmppPart.objects.filter(message_id=message_id, gateway=self.name).exists():
            return f"smpp-parts-{message_id}"
        return None
