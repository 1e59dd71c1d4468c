from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from tmc.messaging import campaigns, recovery, scheduling
from tmc.messaging.services import message_dispatch


@db_task(retries=3, retry_delay=10)
def message_dispatch_task(message_id: int) -> None:
    message_dispatch(message_id=message_id)


@db_task(retries=3, retry_delay=10)
def messages_dispatch_batch(campaign_id: int) -> None:
    """Send a batch of a campaign, then queue the next while work remains."""
    size = campaigns.DISPATCH_BATCH
    if campaigns.campaign_dispatch_batch(campaign_id=campaign_id, size=size) == size:
        messages_dispatch_batch(campaign_id)


@db_periodic_task(crontab(minute="*"))
def schedules_due_run_task() -> None:
    """Send what is scheduled for now, each minute."""
    scheduling.schedules_due_run()


@db_periodic_task(crontab(minute="*"))
def campaigns_release_held_task() -> None:
    """Start campaigns and texts held for quiet hours once they end, each minute."""
    scheduling.campaigns_release_held()
    scheduling.messages_release_held()


@db_periodic_task(crontab(minute="*"))
def messages_recover_task() -> None:
    """Each minute: retries that are due, expiries, and dead workers' claims."""
    recovery.messages_retry_due()
    recovery.messages_expire()
    recovery.messages_reconcile(
        stale_before=timezone.now()
        - timedelta(seconds=settings.TMC_RECONCILE_AFTER_SECONDS)
    )
