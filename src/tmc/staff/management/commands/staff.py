from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.ops.passwords import read_new_password
from tmc.staff.services import staff_create


class Command(BaseCommand):
    help = "Manage provider staff. The password is read from standard input."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Add a staff member.")
        create.add_argument("--username", required=True)
        create.add_argument("--level", type=int, required=True, choices=[1, 2, 3, 4])
        create.add_argument("--name", help="Full name, shown in client logs.")
        create.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        password = read_new_password()
        try:
            member = staff_create(
                actor=None,
                username=options["username"],
                full_name=options["name"] or options["username"],
                email=options["email"],
                level=options["level"],
                password=password,
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(errors)}"
                for field, errors in exc.message_dict.items()
            )
            raise CommandError(f"Staff member not created. {problems}") from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Created staff member {member.username!r} at level {member.level}."
            )
        )
