from datetime import timedelta

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from tmc.contacts.importing import import_run
from tmc.contacts.models import ImportJob

# An import that has not moved for this long lost its worker.
STALLED_AFTER = timedelta(minutes=5)


@db_task(retries=3, retry_delay=30)
def contacts_import_task(job_id: int) -> None:
    import_run(job_id=job_id)


@db_periodic_task(crontab(minute="*"))
def contacts_import_resume_task() -> None:
    """Resume imports whose worker died; the batch rule keeps it safe."""
    stalled = ImportJob.objects.filter(
        status__in=[ImportJob.Status.QUEUED, ImportJob.Status.RUNNING],
        updated_at__lt=timezone.now() - STALLED_AFTER,
    ).values_list("pk", flat=True)
    for job_id in stalled:
        contacts_import_task(job_id)
