from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from tmc.lib import keys


class Command(BaseCommand):
    help = "Create TMC_HOME, its secrets and the database schema. Safe to repeat."

    def handle(self, *args: Any, **options: Any) -> None:
        home = settings.TMC_HOME
        created = keys.ensure_secrets(home)
        for name in created:
            self.stdout.write(f"Created {home / name} (mode 600)")
        (home / "mail").mkdir(exist_ok=True)

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(self.style.SUCCESS(f"TMC is initialised in {home}"))
