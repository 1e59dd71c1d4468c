"""The interface every gateway provider adapter implements.

An adapter turns a ``Submission`` into a provider message id, or raises
``GatewayError``. Delivery reports and inbound texts flow the other way, into
``tmc.gateways.services``, whichever transport the provider uses (the
simulator's task queue, SMPP deliver_sm, or an HTTP callback).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from tmc.lib.segments import Encoding


class DeliveryState(StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True)
class Submission:
    message_id: int
    sender: str
    recipient: str
    body: str
    encoding: Encoding
    parts: int


@dataclass(frozen=True)
class SubmitResult:
    """What the adapter did with a submission.

    ``pending`` says the adapter only queued it for a long-lived connection
    (SMPP): the message stays submitting, with no provider id, until that
    connection records the provider's answer.
    """

    provider_message_id: str
    pending: bool = False


class GatewayError(Exception):
    """The provider refused or could not take the submission.

    ``permanent`` says whether trying again could help.
    """

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Gateway(Protocol):
    name: str

    def submit(self, submission: Submission) -> SubmitResult: ...

    def lookup(self, message_id: int) -> str | None:
        """The provider's id for the platform's message, or None if never taken.

        Asked by the reconciler about messages a worker may have submitted
        just before it died; raises GatewayError when the provider cannot
        answer now.
        """
        ...
