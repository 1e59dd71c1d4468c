"""``tmc smtp``: the email-to-SMS server."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.api.email_to_sms import EmailToSmsHandler, controller_kwargs
from tmc.api.services import networks_parse


class Command(BaseCommand):
    help = "Run the SMTP server that turns mail to <number>@TMC_SMS_DOMAIN into texts."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=2525, help="port to listen on")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            networks_parse(settings.TMC_SMTP_ALLOWED_IPS)
        except ValidationError as exc:
            raise CommandError(f"TMC_SMTP_ALLOWED_IPS: {exc.messages[0]}") from exc
        try:
            extra = controller_kwargs()
        except OSError as exc:
            raise CommandError(f"TMC_SMTP_TLS_CERT/_KEY: {exc}") from exc
        if extra["tls_context"] is None and not settings.TMC_SMTP_ALLOW_PLAIN:
            raise CommandError(
                "Set TMC_SMTP_TLS_CERT and TMC_SMTP_TLS_KEY for STARTTLS, or "
                "TMC_SMTP_ALLOW_PLAIN=1 to take logins in clear (loopback only)."
            )

        controller = Controller(
            EmailToSmsHandler(),
            hostname=options["host"],
            port=options["port"],
            **extra,
        )
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        controller.start()
        self.stdout.write(
            f"Email to SMS on {options['host']}:{options['port']} for "
            f"@{settings.TMC_SMS_DOMAIN}; Ctrl-C stops."
        )
        try:
            stop.wait()
        finally:
            controller.stop()
