"""``tmc smpp``: hold the SMPP binds that carry messages.

Without ``--provider`` it holds one bind configured by ``TMC_SMPP_*`` (the
``smpp`` gateway); with it, every bind the provider's contract allows, as
staff configured them, one thread each.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.gateways.models import GatewayProvider
from tmc.gateways.smpp.bind import BindConfig, SmppBind


class Command(BaseCommand):
    help = "Hold SMPP transceiver binds: send queued parts, take receipts and replies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--name",
            default="",
            help="the bind's name (default smpp-1, or <provider>-<n>); run one "
            "process per name",
        )
        parser.add_argument(
            "--provider",
            default="",
            help="an SMPP provider set up under /staff/gateways/ (default: the "
            "TMC_SMPP_* settings)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configs = self._configs(options["provider"], options["name"])
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            # Each loop drains its window and unbinds before it returns.
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        binds = [SmppBind(config) for config in configs]
        threads = [
            threading.Thread(target=bind.run, args=(stop,), name=bind.config.name)
            for bind in binds
        ]
        for config in configs:
            self.stdout.write(
                f"SMPP bind {config.name} to {config.host}:{config.port}"
                f"{' over TLS' if config.tls else ''}."
            )
        self.stdout.write("Ctrl-C unbinds and stops.")
        for thread in threads:
            thread.start()
        # Joined with a timeout so the main thread keeps taking signals.
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=0.5)
        accepted = sum(bind.stats.accepted for bind in binds)
        receipts = sum(bind.stats.receipts for bind in binds)
        self.stdout.write(f"Unbound: {accepted} accepted, {receipts} receipts.")

    def _configs(self, provider_name: str, name: str) -> list[BindConfig]:
        if not provider_name:
            if not settings.TMC_SMPP_SYSTEM_ID:
                raise CommandError("TMC_SMPP_SYSTEM_ID is not set: the SMSC needs it")
            return [BindConfig.from_settings(name=name or "smpp-1")]
        provider = GatewayProvider.objects.filter(
            name=provider_name, kind=GatewayProvider.Kind.SMPP
        ).first()
        if provider is None:
            raise CommandError(f"no SMPP provider is called {provider_name!r}")
        if not provider.enabled:
            raise CommandError(f"{provider_name} is disabled")
        count = int(provider.setting("binds", 1))
        prefix = name or provider.name
        return [
            BindConfig.from_provider(provider, name=f"{prefix}-{n}")
            for n in range(1, count + 1)
        ]
