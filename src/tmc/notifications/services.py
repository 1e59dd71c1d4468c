"""Tell the right people about security events, by email.

Emails are rendered now, inside the request, and sent by the worker after
the triggering transaction commits: a rolled-back change notifies nobody,
and a slow mail server never slows a log-in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import transaction
from django.template.loader import render_to_string

from tmc.accounts.models import Organisation
from tmc.identity.models import Role, User

logger = logging.getLogger(__name__)

MANAGER_ROLES = (Role.CONTROLLER, Role.ADMINISTRATOR)


def managers_of(
    organisation: Organisation, roles: Iterable[str] = MANAGER_ROLES
) -> list[User]:
    return list(
        User.objects.filter(
            organisation=organisation, role__in=list(roles), is_active=True
        ).exclude(email="")
    )


def notify(
    *, recipients: Iterable[User], template: str, context: dict[str, Any]
) -> int:
    """Queue one email per recipient from ``notifications/<template>.*``."""
    count = 0
    for recipient in recipients:
        full_context = {**context, "recipient": recipient}
        subject = render_to_string(
            f"notifications/{template}_subject.txt", full_context
        ).strip()
        text = render_to_string(f"notifications/{template}.txt", full_context)
        html = render_to_string(f"notifications/{template}.html", full_context)
        email_queue(recipient.email, subject, text, html)
        count += 1
    logger.info("notification %s queued for %s recipients", template, count)
    return count


def email_queue(address: str, subject: str, text: str, html: str) -> None:
    """Have the worker send this email once the current transaction commits."""
    transaction.on_commit(partial(_enqueue, address, subject, text, html))


def _enqueue(address: str, subject: str, text: str, html: str) -> None:
    from tmc.notifications.tasks import email_send_task

    email_send_task(address, subject, text, html)
