from django.core.mail import EmailMultiAlternatives
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, task

from tmc.notifications.services import digests_send


@task(retries=5, retry_delay=60)
def email_send_task(address: str, subject: str, text: str, html: str) -> None:
    email = EmailMultiAlternatives(subject=subject, body=text, to=[address])
    if html:
        email.attach_alternative(html, "text/html")
    email.send()


@db_periodic_task(crontab(minute="0"))
def digests_send_task() -> None:
    """Each hour, one email per person with the notices held for it."""
    digests_send()
