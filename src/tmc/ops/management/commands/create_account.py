from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.accounts.models import Package
from tmc.accounts.services import account_create
from tmc.ops.passwords import read_new_password


class Command(BaseCommand):
    help = (
        "Open a client organisation with its Controller. The password is read "
        "from standard input, or prompted for on a terminal."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="Organisation name.")
        parser.add_argument("--username", required=True, help="Controller's username.")
        parser.add_argument("--email", required=True, help="Controller's email.")
        parser.add_argument("--package", help="Name of the package bought, if any.")
        parser.add_argument(
            "--region", default="GB", help="Default region for numbers (GB)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["name"].strip():
            raise CommandError("--name must not be empty.")
        package = None
        if options["package"]:
            package = Package.objects.filter(name=options["package"]).first()
            if package is None:
                known = ", ".join(Package.objects.values_list("name", flat=True))
                raise CommandError(
                    f"No package named {options['package']!r}. "
                    f"Known: {known or 'none'}."
                )

        password = read_new_password()
        try:
            organisation, controller = account_create(
                name=options["name"],
                controller_username=options["username"],
                controller_email=options["email"],
                controller_password=password,
                package=package,
                default_region=options["region"].upper(),
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(errors)}"
                for field, errors in exc.message_dict.items()
            )
            raise CommandError(f"Account not created. {problems}") from exc

        self.stdout.write(
            self.style.SUCCESS(
                f"Created organisation {organisation.pk} {organisation.name!r} "
                f"with Controller {controller.username!r}."
            )
        )
