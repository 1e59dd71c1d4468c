"""What the platform tells people about, who hears it, and what they may mute.

Security notices go to whoever the security policy names and cannot be
switched off in-app or by email; only the desktop pop-up, which needs the
browser's own permission anyway, is each person's choice. Everything else
follows the recipient's preferences, starting from the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class Kind(models.TextChoices):
    USER_CREATED = "user_created", "New user added"
    PASSWORD_RESET_REQUESTED = "password_reset_requested", "Password reset requested"
    PASSWORD_CHANGED = "password_changed", "Password changed"
    ACCOUNT_LOCKED = "account_locked", "Account locked"
    NEW_DEVICE = "new_device", "New remembered device"
    STAFF_ACCESS = "staff_access", "Provider staff opened the account"
    REPLY_RECEIVED = "reply_received", "Reply received"
    LOW_CREDIT = "low_credit", "Credit balance low"
    SCHEDULE_REFUSED = "schedule_refused", "Scheduled send not sent"


class Channel(models.TextChoices):
    IN_APP = "in_app", "In TMC"
    EMAIL = "email", "Email"
    DESKTOP = "desktop", "Desktop pop-up"
    DIGEST = "digest", "Hourly email digest"


@dataclass(frozen=True)
class NoticeType:
    kind: Kind
    security: bool
    # Channels on for someone who has never changed their preferences.
    defaults: frozenset[Channel]
    explanation: str


_ALL = frozenset({Channel.IN_APP, Channel.EMAIL})

NOTICE_TYPES: dict[str, NoticeType] = {
    notice.kind.value: notice
    for notice in (
        NoticeType(
            Kind.USER_CREATED,
            True,
            _ALL,
            "Controllers and Administrators, when a user joins the organisation.",
        ),
        NoticeType(
            Kind.PASSWORD_RESET_REQUESTED,
            True,
            _ALL,
            "Controllers and Administrators, when someone asks to reset a "
            "user's password.",
        ),
        NoticeType(
            Kind.PASSWORD_CHANGED,
            True,
            _ALL,
            "Administrators, and the user whose password changed.",
        ),
        NoticeType(
            Kind.ACCOUNT_LOCKED,
            True,
            _ALL,
            "Administrators, and the locked user by email, after five failed attempts.",
        ),
        NoticeType(
            Kind.NEW_DEVICE,
            True,
            _ALL,
            "You, when a device is remembered for your log-in.",
        ),
        NoticeType(
            Kind.STAFF_ACCESS,
            True,
            _ALL,
            "Controllers, when provider staff open the account, with their reason.",
        ),
        NoticeType(
            Kind.REPLY_RECEIVED,
            False,
            frozenset({Channel.IN_APP}),
            "You, when someone replies to a text you sent.",
        ),
        NoticeType(
            Kind.LOW_CREDIT,
            False,
            _ALL,
            "Controllers, when the credit balance falls below the alert level.",
        ),
        NoticeType(
            Kind.SCHEDULE_REFUSED,
            False,
            _ALL,
            "You, when a send you scheduled could not go (no credit, say).",
        ),
    )
}

# Channels nobody can switch off for security notices.
LOCKED_ON = frozenset({Channel.IN_APP, Channel.EMAIL})
