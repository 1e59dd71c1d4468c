"""The interface every gateway provider adapter implements.

An adapter turns a ``Submission`` into a provider message id, or raises
``GatewayError``; ``submit_batch`` does the same for many at once, which is
how campaigns are sent. Delivery reports and inbound texts flow the other way, into
``tmc.gateways.services``, whichever transport the provider uses (the
simulator's task queue, SMPP deliver_sm, or an HTTP callback).
"""

from __future__ import annotations

from collections.abc import Sequence
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


# What a batch submission says of each message: taken, or refused.
BatchOutcome = SubmitResult | GatewayError


class Gateway(Protocol):
    name: str

    def submit(self, submission: Submission) -> SubmitResult: ...

    def submit_batch(self, submissions: Sequence[Submission]) -> list[BatchOutcome]:
        """Submit many messages; one outcome per submission, in order.

        Called inside the transaction that records the outcomes, as
        ``submit`` is. Raises GatewayError when the provider took none of
        them (it is down); a refusal of one message is its outcome.
        """
        ...

    def lookup(self, message_id: int) -> str | None:
        """The provider's id for the platform's message, or None if never taken.

        Asked by the reconciler about messages a worker may have submitted
        just before it died; raises GatewayError when the provider cannot
        answer now.
        """
        ...


def submit_each(
    gateway: Gateway, submissions: Sequence[Submission]
) -> list[BatchOutcome]:
    """``submit_batch`` for a provider that takes one message per request.

    A temporary refusal says the provider is failing: what was not yet sent
    gets the same refusal rather than a request each (and when nothing was
    taken, the whole batch is refused, as from a provider that is down).
    """
    outcomes: list[BatchOutcome] = []
    for position, submission in enumerate(submissions):
        try:
            outcomes.append(gateway.submit(submission))
        except GatewayError as exc:
            if exc.permanent:
                outcomes.append(exc)
                continue
            if not any(isinstance(o, SubmitResult) for o in outcomes):
                raise
            outcomes.extend([exc] * (len(submissions) - position))
            break
    return outcomes
