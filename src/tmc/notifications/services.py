"""Tell the right people, by the channels they chose and the policy demands.

One ``notify`` for every notice: it writes the in-app notice (the bell and
the desktop pop-up read those) in the caller's transaction and queues the
email for the worker once that transaction commits, so a rolled-back change
tells nobody and a slow mail server never slows a log-in. Emails and notices
carry names, masked numbers and links, never passwords, message bodies or
full numbers.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.audit.services import event_record
from tmc.identity.models import Role, User
from tmc.notifications.catalogue import (
    LOCKED_ON,
    NOTICE_TYPES,
    Channel,
    Kind,
    NoticeType,
)
from tmc.notifications.models import (
    DigestItem,
    LowCreditAlert,
    Notification,
    Preference,
)

logger = logging.getLogger(__name__)

MANAGER_ROLES = (Role.CONTROLLER, Role.ADMINISTRATOR)
SUBJECT_PREFIX = "TMC: "


# --- who hears -----------------------------------------------------------------


def managers_of(
    organisation: Organisation, roles: Iterable[str] = MANAGER_ROLES
) -> list[User]:
    return list(
        User.objects.filter(
            organisation=organisation, role__in=list(roles), is_active=True
        ).order_by("pk")
    )


def administrators_of(
    organisation: Organisation, *, other_than: User | None = None
) -> list[User]:
    """Who hears security notices the policy addresses to Administrators.

    ``other_than`` is the person the notice is about: someone else must hear
    of their lock-out or new password, so when no other Administrator is
    active, the Controllers do.
    """
    for roles in ([Role.ADMINISTRATOR], [Role.CONTROLLER]):
        people = [
            person
            for person in managers_of(organisation, roles)
            if other_than is None or person.pk != other_than.pk
        ]
        if people:
            return people
    return []


# --- preferences ---------------------------------------------------------------


def channels_allowed(notice: NoticeType, chosen: Preference | None) -> set[Channel]:
    if chosen is None:
        wanted = set(notice.defaults)
    else:
        wanted = {
            channel
            for channel, on in (
                (Channel.IN_APP, chosen.in_app),
                (Channel.EMAIL, chosen.email),
                (Channel.DESKTOP, chosen.desktop),
                (Channel.DIGEST, chosen.email_digest),
            )
            if on
        }
    if notice.security:
        # Security notices go out at once: never held for a digest.
        wanted |= LOCKED_ON
        wanted.discard(Channel.DIGEST)
    elif Channel.DIGEST in wanted:
        wanted.discard(Channel.EMAIL)
    return wanted


@dataclass(frozen=True)
class PreferenceRow:
    notice: NoticeType
    channels: set[Channel]

    @property
    def locked(self) -> frozenset[Channel]:
        return LOCKED_ON if self.notice.security else frozenset()

    @property
    def unavailable(self) -> frozenset[Channel]:
        """Channels this kind cannot use: security notices are never held."""
        return frozenset({Channel.DIGEST}) if self.notice.security else frozenset()


def preferences_for(user: User) -> list[PreferenceRow]:
    chosen = {p.kind: p for p in Preference.objects.filter(user=user)}
    return [
        PreferenceRow(notice, channels_allowed(notice, chosen.get(kind)))
        for kind, notice in NOTICE_TYPES.items()
    ]


def preferences_save(*, user: User, wanted: dict[str, set[Channel]]) -> None:
    """Store the channels chosen per kind; security channels stay on."""
    changed: dict[str, list[str]] = {}
    with transaction.atomic():
        for row in preferences_for(user):
            kind = row.notice.kind.value
            channels = set(wanted.get(kind, set())) | set(row.locked)
            Preference.objects.update_or_create(
                user=user,
                kind=kind,
                defaults={
                    "in_app": Channel.IN_APP in channels,
                    "email": Channel.EMAIL in channels,
                    "desktop": Channel.DESKTOP in channels,
                    "email_digest": Channel.DIGEST in channels
                    and Channel.DIGEST not in row.unavailable,
                },
            )
            if channels != row.channels:
                changed[kind] = sorted(channels)
        if changed:
            event_record(
                action="notifications.preferences_changed",
                actor=user,
                target=user,
                details={"channels": changed},
            )


# --- sending -------------------------------------------------------------------


def notify(
    *,
    kind: Kind,
    recipients: Iterable[User],
    context: dict[str, Any],
    template: str | None = None,
    link: str = "",
    channels: Collection[Channel] | None = None,
) -> int:
    """Tell each recipient once, by the channels allowed for ``kind``.

    ``template`` names ``notifications/<template>{_subject.txt,.txt,.html}``
    (default: the kind); ``channels`` narrows the channels further, as for a
    locked user who can read email but cannot sign in.
    """
    people = {user.pk: user for user in recipients if user.is_active}
    return _notices_send(
        kind,
        [Notice(user, context, link) for user in people.values()],
        template=template,
        channels=channels,
    )


@dataclass(frozen=True)
class Notice:
    """One notice for ``notify_each``: who, what it says, where it leads."""

    recipient: User
    context: dict[str, Any]
    link: str = ""


def notify_each(*, kind: Kind, notices: Sequence[Notice]) -> int:
    """``notify`` for many notices of one kind, each with its own context.

    For work done in batches (a hundred replies, a hundred owners to tell):
    preferences are read once and the in-app notices written with one
    insert. Inactive recipients are skipped. Returns how many were sent.
    """
    return _notices_send(
        kind,
        [notice for notice in notices if notice.recipient.is_active],
        template=None,
        channels=None,
    )


def _notices_send(
    kind: Kind,
    notices: list[Notice],
    *,
    template: str | None,
    channels: Collection[Channel] | None,
) -> int:
    notice_type = NOTICE_TYPES[kind.value]
    user_ids = {notice.recipient.pk for notice in notices}
    chosen = {
        p.user_id: p
        for p in Preference.objects.filter(user_id__in=user_ids, kind=kind.value)
    }
    in_app: list[Notification] = []
    held: list[DigestItem] = []
    emailed = 0
    for notice in notices:
        user = notice.recipient
        wanted = channels_allowed(notice_type, chosen.get(user.pk))
        if channels is not None:
            wanted &= set(channels)
        full_context = {
            **notice.context,
            "recipient": user,
            "link": _absolute(notice.link),
        }
        subject = render_to_string(
            f"notifications/{template or kind.value}_subject.txt", full_context
        ).strip()
        if Channel.IN_APP in wanted:
            in_app.append(
                Notification(
                    organisation_id=user.organisation_id,
                    recipient=user,
                    kind=kind.value,
                    title=subject.removeprefix(SUBJECT_PREFIX)[:200],
                    link=notice.link,
                    desktop=Channel.DESKTOP in wanted,
                )
            )
        if Channel.EMAIL in wanted and user.email:
            _email_render_and_queue(
                user.email, template or kind.value, full_context, subject
            )
            emailed += 1
        elif Channel.DIGEST in wanted and user.email:
            held.append(
                DigestItem(
                    recipient=user,
                    kind=kind.value,
                    title=subject.removeprefix(SUBJECT_PREFIX)[:200],
                    link=_absolute(notice.link),
                )
            )
    Notification.objects.bulk_create(in_app)
    DigestItem.objects.bulk_create(held)
    logger.info(
        "notification %s: %s in-app, %s emails", kind.value, len(in_app), emailed
    )
    return len(notices)


def email_user(*, user: User, template: str, context: dict[str, Any]) -> None:
    """An email that is not a notice, such as the link to set a first password."""
    full_context = {**context, "recipient": user}
    subject = render_to_string(
        f"notifications/{template}_subject.txt", full_context
    ).strip()
    _email_render_and_queue(user.email, template, full_context, subject)


def _absolute(link: str) -> str:
    if not link or "://" in link:
        return link
    return str(settings.TMC_BASE_URL).rstrip("/") + link


def _email_render_and_queue(
    address: str, template: str, context: dict[str, Any], subject: str
) -> None:
    text = render_to_string(f"notifications/{template}.txt", context)
    html = render_to_string(f"notifications/{template}.html", context)
    email_queue(address, subject, text, html)


def email_queue(address: str, subject: str, text: str, html: str) -> None:
    """Have the worker send this email once the current transaction commits."""
    transaction.on_commit(partial(_enqueue, address, subject, text, html))


def _enqueue(address: str, subject: str, text: str, html: str) -> None:
    from tmc.notifications.tasks import email_send_task

    email_send_task(address, subject, text, html)


# --- the in-app list -------------------------------------------------------------


def notifications_for(user: User) -> QuerySet[Notification]:
    return Notification.objects.for_user(user).filter(recipient=user)


def unread_for(user: User) -> QuerySet[Notification]:
    return notifications_for(user).filter(read_at__isnull=True)


def notifications_mark_read(*, user: User, notification_id: int | None = None) -> int:
    """Mark one of the user's notices read, or all of them; never another's."""
    unread = unread_for(user)
    if notification_id is not None:
        unread = unread.filter(pk=notification_id)
    return unread.update(read_at=timezone.now())


# --- low credit ------------------------------------------------------------------


def _alert_for(organisation: Organisation) -> LowCreditAlert:
    alert, _ = LowCreditAlert.objects.get_or_create(
        organisation=organisation,
        defaults={"threshold": settings.TMC_LOW_CREDIT_THRESHOLD},
    )
    return alert


def low_credit_threshold(organisation: Organisation) -> int:
    alert = LowCreditAlert.objects.filter(organisation=organisation).first()
    return alert.threshold if alert else int(settings.TMC_LOW_CREDIT_THRESHOLD)


def low_credit_check(organisation: Organisation) -> None:
    """Tell the Controllers once when the balance falls below their alert level.

    Called after every balance change; the conditional update makes one fall
    produce one notice however many sends race past the threshold.
    """
    alert = _alert_for(organisation)
    balance = organisation.credit_balance
    if balance < alert.threshold:
        fell = LowCreditAlert.objects.filter(
            pk=alert.pk, alerted_at__isnull=True
        ).update(alerted_at=timezone.now())
        if fell:
            from django.urls import reverse

            notify(
                kind=Kind.LOW_CREDIT,
                recipients=managers_of(organisation, [Role.CONTROLLER]),
                context={
                    "organisation": organisation,
                    "balance": balance,
                    "threshold": alert.threshold,
                },
                link=reverse("accounts:dashboard"),
            )
    elif alert.alerted_at is not None:
        LowCreditAlert.objects.filter(pk=alert.pk).update(alerted_at=None)


def low_credit_threshold_set(
    *, organisation: Organisation, threshold: int, actor: User
) -> None:
    if threshold < 0:
        raise ValueError("The alert level cannot be negative.")
    with transaction.atomic():
        alert = _alert_for(organisation)
        before = alert.threshold
        alert.threshold = threshold
        alert.alerted_at = None
        alert.save(update_fields=["threshold", "alerted_at"])
        event_record(
            action="settings.low_credit_threshold_changed",
            organisation=organisation,
            actor=actor,
            target=organisation,
            details={"threshold": {"before": before, "after": threshold}},
        )
        low_credit_check(organisation)


# --- digests -------------------------------------------------------------------------


def digests_send(*, now: datetime | None = None) -> int:
    """Email each person their held notices in one message; return how many.

    Items are claimed with a conditional UPDATE before the email is queued,
    so two workers running the digest at once never send an item twice.
    """
    moment = now or timezone.now()
    people = (
        DigestItem.objects.filter(sent_at__isnull=True)
        .values_list("recipient_id", flat=True)
        .distinct()
    )
    sent = 0
    for user in User.objects.filter(pk__in=list(people), is_active=True):
        with transaction.atomic():
            pending = list(
                DigestItem.objects.filter(recipient=user, sent_at__isnull=True)
            )
            claimed = DigestItem.objects.filter(
                pk__in=[item.pk for item in pending], sent_at__isnull=True
            ).update(sent_at=moment)
            if claimed != len(pending) or not pending:
                continue
            context = {"recipient": user, "items": pending}
            subject = render_to_string(
                "notifications/digest_subject.txt", context
            ).strip()
            _email_render_and_queue(user.email, "digest", context, subject)
            sent += 1
    if sent:
        logger.info("digests sent count=%s", sent)
    return sent
