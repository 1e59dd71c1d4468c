"""Periodic audit work: anchors every ten minutes, pruning once a night."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tmc.audit.services import anchors_write, events_prune


@db_periodic_task(crontab(minute="*/10"))
def audit_anchor_task() -> None:
    anchors_write(path=settings.TMC_AUDIT_ANCHOR_FILE)


@db_periodic_task(crontab(hour="3", minute="17"))
def audit_prune_task() -> None:
    events_prune(
        before=timezone.now() - timedelta(days=settings.TMC_AUDIT_RETENTION_DAYS),
        anchors_path=settings.TMC_AUDIT_ANCHOR_FILE,
    )
