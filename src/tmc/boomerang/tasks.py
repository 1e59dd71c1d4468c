from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from tmc.boomerang.services import tickets_expire


@db_periodic_task(crontab(minute="*"))
def tickets_expire_task() -> None:
    """Close deadline tickets whose time is up, each minute."""
    tickets_expire()
