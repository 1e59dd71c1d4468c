from huey.contrib.djhuey import db_task

from tmc.gateways.simulator.services import simulator_reports


@db_task(retries=3, retry_delay=5)
def simulator_report_deliveries(provider_message_ids: list[str]) -> None:
    simulator_reports(provider_message_ids)


@db_task(retries=3, retry_delay=5)
def simulator_report_delivery(provider_message_id: str) -> None:
    # Kept for reports queued before they were sent in batches.
    simulator_reports([provider_message_id])
