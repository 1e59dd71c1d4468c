from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from tmc.api.idempotency import idempotency_records_prune
from tmc.api.webhooks import (
    webhook_deliveries_purge,
    webhook_deliveries_send_due,
    webhook_delivery_send,
)


@db_task()
def webhook_delivery_send_task(delivery_id: int) -> None:
    """Send one webhook delivery as soon as its event is committed."""
    webhook_delivery_send(delivery_id=delivery_id)


@db_periodic_task(crontab(minute="*"))
def webhook_deliveries_send_due_task() -> None:
    """Retry the webhook deliveries whose next attempt is due, each minute."""
    webhook_deliveries_send_due()


@db_periodic_task(crontab(hour="3", minute="40"))
def webhook_deliveries_purge_task() -> None:
    """Forget finished webhook deliveries after 30 days, each night."""
    webhook_deliveries_purge()


@db_periodic_task(crontab(minute="25"))
def idempotency_records_prune_task() -> None:
    """Forget Idempotency-Key answers older than TMC_API_IDEMPOTENCY_HOURS."""
    idempotency_records_prune()
