from huey.contrib.djhuey import db_task

from tmc.gateways.simulator.services import simulator_report


@db_task(retries=3, retry_delay=5)
def simulator_report_delivery(provider_message_id: str) -> None:
    simulator_report(provider_message_id)
