"""What the follow-up and batch tests share: asking many, and what they got."""

from __future__ import annotations

from tmc.boomerang.answers import Kind
from tmc.boomerang.models import Question
from tmc.boomerang.services import FollowUps, questions_send
from tmc.identity.models import User
from tmc.messaging.models import Message
from tmc.testing import Tenant

QUESTION_BODY = "Can you work Saturday? Reply YES or NO"


def handsets(count: int, block: int = 11) -> list[str]:
    """``count`` mobile numbers, distinct for each ``block``."""
    return [f"+447400{block:02d}{n:04d}" for n in range(count)]


def ask(
    tenant: Tenant, recipients: list[str], follow_ups: FollowUps | None = None
) -> Question:
    """Ask a yes/no question of ``recipients`` as the tenant's user."""
    User.objects.filter(pk=tenant.user.pk).update(can_send_bulk=True)
    tenant.user.refresh_from_db()
    return questions_send(
        user=tenant.user,
        recipients=recipients,
        title="Saturday",
        body=QUESTION_BODY,
        kind=Kind.YES_NO,
        follow_ups=follow_ups,
    )


def texts_to(number: str) -> list[str]:
    """What was sent to ``number`` other than the question itself."""
    return [
        m.body
        for m in Message.objects.order_by("pk")
        if m.recipient == number and m.body != QUESTION_BODY
    ]
