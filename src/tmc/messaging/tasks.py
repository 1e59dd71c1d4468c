from huey.contrib.djhuey import db_task

from tmc.messaging.services import message_dispatch


@db_task(retries=3, retry_delay=10)
def message_dispatch_task(message_id: int) -> None:
    message_dispatch(message_id=message_id)
