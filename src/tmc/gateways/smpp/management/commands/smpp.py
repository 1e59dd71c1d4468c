"""``tmc smpp``: hold the SMPP bind that carries messages (TMC_GATEWAY=smpp)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.gateways.smpp.bind import BindConfig, SmppBind


class Command(BaseCommand):
    help = (
        "Hold one SMPP transceiver bind: send queued parts, take receipts and replies."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name",
            default="smpp-1",
            help="this bind's name; run one process per bind, each with its own",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.TMC_SMPP_SYSTEM_ID:
            raise CommandError("TMC_SMPP_SYSTEM_ID is not set: the SMSC needs it")
        bind = SmppBind(BindConfig.from_settings(name=options["name"]))
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # The loop drains its window and unbinds before it returns.
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.stdout.write(
            f"SMPP bind {options['name']} to {settings.TMC_SMPP_HOST}:"
            f"{settings.TMC_SMPP_PORT}; Ctrl-C unbinds and stops."
        )
        bind.run(stop)
        self.stdout.write(
            f"Unbound: {bind.stats.accepted} accepted, {bind.stats.receipts} receipts."
        )
