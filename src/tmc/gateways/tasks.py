from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from tmc.gateways.inbound import replies_match_all


@db_task()
def replies_match_task() -> None:
    """Match the texts waiting for their conversations."""
    replies_match_all()


@db_periodic_task(crontab(minute="*"))
def replies_match_sweep_task() -> None:
    """Each minute, match any text whose task was lost (a worker died)."""
    replies_match_all()
