from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Q

from tmc.accounts.services import organisation_named
from tmc.boomerang.models import Ticket, VirtualNumber
from tmc.boomerang.services import number_retire, numbers_add


def _problems(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(" ".join(errors) for errors in error.message_dict.values())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "The virtual numbers that questions go out from and replies come to."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Add numbers to the end of a pool.")
        add.add_argument("numbers", nargs="+", help="Mobile numbers, E.164")
        add.add_argument(
            "--org", help="Dedicate them to this organisation (id or exact name)."
        )
        actions.add_parser("list", help="List every number with its open tickets.")
        retire = actions.add_parser("retire", help="Take a number out of its pool.")
        retire.add_argument("number")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            self._add(options["numbers"], options.get("org"))
        elif action == "retire":
            try:
                number = number_retire(number=options["number"])
            except ValidationError as exc:
                raise CommandError(_problems(exc)) from exc
            self.stdout.write(f"Retired {number.number}.")
        else:
            self._list()

    def _add(self, numbers: list[str], org: str | None) -> None:
        organisation = None
        if org:
            organisation = organisation_named(org)
            if organisation is None:
                raise CommandError(f"No organisation {org!r}.")
        try:
            added = numbers_add(numbers=numbers, organisation=organisation)
        except ValidationError as exc:
            raise CommandError(f"No number added. {_problems(exc)}") from exc
        pool = organisation.name if organisation else "the shared pool"
        self.stdout.write(f"Added {len(added)} number(s) to {pool}.")

    def _list(self) -> None:
        numbers = (
            VirtualNumber.objects.select_related("organisation")
            .annotate(
                open_tickets=Count(
                    "tickets", filter=Q(tickets__status=Ticket.Status.OPEN)
                )
            )
            .order_by("organisation_id", "position", "id")
        )
        self.stdout.write(f"{'number':<16} {'pool':<24} {'open':>6}  state")
        for number in numbers:
            pool = number.organisation.name if number.organisation else "shared"
            state = "retired" if number.retired_at else "active"
            open_tickets = getattr(number, "open_tickets", 0)
            self.stdout.write(
                f"{number.number:<16} {pool[:24]:<24} {open_tickets:>6}  {state}"
            )
