"""The SMPP 3.4 provider, seen from dispatch.

Dispatch runs in the task workers, which must not each hold an SMPP session:
SMSCs allow few binds per account, and a window of outstanding submits needs
one connection that many messages share. So ``submit`` only queues the
message's parts in the database, and the ``tmc smpp`` worker, which holds the
bind, sends them and records what the SMSC answers (see ``bind.py``).
"""

from __future__ import annotations

import logging

from django.db import transaction

from tmc.gateways.base import GatewayError, Submission, SubmitResult
from tmc.gateways.smpp.services import NAME, parts_queue

logger = logging.getLogger(__name__)


class SmppGateway:
    name = NAME

    def submit(self, submission: Submission) -> SubmitResult:
        if not submission.recipient.startswith("+"):
            raise GatewayError("destination is not in E.164 form", permanent=True)
        if submission.parts > 255:
            raise GatewayError("more parts than a concatenated SMS has", permanent=True)

        with transaction.atomic():
            parts_queue(message_id=submission.message_id, total=submission.parts)
        logger.info(
            "smpp queued message_id=%s parts=%s",
            submission.message_id,
            submission.parts,
        )
        return SubmitResult(provider_message_id="", pending=True)
