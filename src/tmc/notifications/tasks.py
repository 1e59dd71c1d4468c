from django.core.mail import EmailMultiAlternatives
from huey.contrib.djhuey import task


@task(retries=5, retry_delay=60)
def email_send_task(address: str, subject: str, text: str, html: str) -> None:
    email = EmailMultiAlternatives(subject=subject, body=text, to=[address])
    if html:
        email.attach_alternative(html, "text/html")
    email.send()
