"""``tmc gateway test``: one text through one provider, and its receipt."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.accounts.models import Organisation
from tmc.accounts.services import organisation_named
from tmc.gateways.probe import ProbeError, probe_send, probe_wait
from tmc.lib.phone import mask_number


class Command(BaseCommand):
    help = "Check a gateway provider by sending one text through it."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        test = actions.add_parser(
            "test",
            help="send one text through PROVIDER and wait for its delivery report",
        )
        test.add_argument("provider", help="a gateway name, as routes name it")
        test.add_argument("--to", required=True, help="the handset's number")
        test.add_argument(
            "--org",
            default="",
            help="organisation id or name that sends it (needed when there are "
            "several); its Controller sends from its default sender, free",
        )
        test.add_argument("--text", default="TMC gateway test")
        test.add_argument(
            "--timeout",
            type=float,
            default=60.0,
            help="seconds to wait for the delivery report (default 60)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["timeout"] <= 0:
            raise CommandError("--timeout must be more than 0 seconds")
        organisation = self._organisation(options["org"])
        try:
            message = probe_send(
                gateway_name=options["provider"],
                organisation=organisation,
                recipient=options["to"],
                text=options["text"],
            )
        except ProbeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Message {message.pk} to {mask_number(message.recipient)} "
            f"through {options['provider']}:"
        )
        outcome = probe_wait(
            message_id=message.pk,
            timeout=options["timeout"],
            progress=lambda status: self.stdout.write(f"  {status}"),
        )
        if outcome.delivered:
            self.stdout.write(f"Delivered after {outcome.seconds:.1f} s.")
            return
        if outcome.status == "failed":
            raise CommandError(f"Not delivered: {outcome.reason or 'no reason given'}")
        raise CommandError(
            f"No delivery report within {options['timeout']:g} s "
            f"(the message is {outcome.status})."
        )

    def _organisation(self, org: str) -> Organisation:
        if org:
            found = organisation_named(org)
            if found is None:
                raise CommandError(f"No organisation {org!r}.")
            return found
        organisations = list(Organisation.objects.order_by("pk")[:2])
        if len(organisations) != 1:
            raise CommandError("Name the organisation that sends it with --org.")
        return organisations[0]
