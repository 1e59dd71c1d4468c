from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.gateways.simulator.adapter import NAME
from tmc.gateways.simulator.services import handset_reply
from tmc.lib.phone import InvalidNumber, normalise_mobile


class Command(BaseCommand):
    help = "Act as a simulated handset: text one of our numbers."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        reply = actions.add_parser("reply", help="A handset texts a number.")
        reply.add_argument("--from", dest="sender", required=True, help="The handset")
        reply.add_argument("--to", required=True, help="Our number it texts")
        reply.add_argument("--text", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.TMC_GATEWAY != NAME:
            raise CommandError("The gateway simulator is not in use (TMC_GATEWAY).")
        try:
            sender = normalise_mobile(options["sender"], settings.TMC_DEFAULT_REGION)
            to = normalise_mobile(options["to"], settings.TMC_DEFAULT_REGION)
        except InvalidNumber as exc:
            raise CommandError(str(exc)) from exc
        if not options["text"].strip():
            raise CommandError("Give the text of the reply.")
        inbound = handset_reply(handset_number=sender, to=to, body=options["text"])
        where = "matched" if inbound.organisation_id else "unmatched (provider inbox)"
        self.stdout.write(f"Inbound message {inbound.pk} received, {where}.")
