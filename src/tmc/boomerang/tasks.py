from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tmc.boomerang.services import reminders_send, tickets_expire


@db_periodic_task(crontab(minute="*"))
def tickets_expire_task() -> None:
    """Close deadline tickets whose time is up, each minute."""
    tickets_expire()


@db_periodic_task(crontab(minute="*"))
def reminders_send_task() -> None:
    """Remind those who have not answered, each minute."""
    reminders_send()
