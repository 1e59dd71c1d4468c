from __future__ import annotations

import signal

# Runs this same program again, without a shell.
import subprocess  # nosec B404
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.ops.services import demo_seed


class Command(BaseCommand):
    help = (
        "Initialise, seed a demo organisation and run the web server, the worker "
        "and the gateway simulator together. Ctrl-C stops them all."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="Initialise and seed, print the login, and start nothing.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("init", stdout=self.stdout)
        login = demo_seed(home=settings.TMC_HOME)
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(
            self.style.SUCCESS("\nTMC demo\n")
            + f"  Open      {url}\n"
            + f"  Username  {login.username}\n"
            + f"  Password  {login.password}\n"
            + f"  (kept in {settings.TMC_HOME}/demo-password)\n"
            + "  Texts go to the built-in gateway simulator; delivery reports "
            + f"follow after {settings.TMC_SIMULATOR_REPORT_DELAY:g} s.\n"
        )
        if options["seed_only"]:
            return
        self._run_all(options["host"], options["port"])

    def _run_all(self, host: str, port: int) -> None:
        program = [sys.executable, "-m", "tmc"]
        children = {
            "web": subprocess.Popen(  # noqa: S603  # nosec B603
                [*program, "serve", "--host", host, "--port", str(port)]
            ),
            "worker": subprocess.Popen([*program, "worker"]),  # noqa: S603  # nosec B603
        }

        def stop(*_: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        failed = None
        try:
            while failed is None:
                time.sleep(0.5)
                failed = next(
                    (
                        name
                        for name, child in children.items()
                        if child.poll() is not None
                    ),
                    None,
                )
        except KeyboardInterrupt:
            self.stdout.write("\nStopping the demo…")
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    child.kill()
        if failed is not None:
            raise CommandError(
                f"The {failed} process stopped (exit {children[failed].returncode}); "
                "the demo has been shut down."
            )
