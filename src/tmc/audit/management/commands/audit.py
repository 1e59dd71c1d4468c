from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tmc.audit.services import anchors_write, chains_verify, events_prune


class Command(BaseCommand):
    help = (
        "The activity log's tamper evidence and retention: verify the hash "
        "chains against the anchor log, write anchors, prune old events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser(
            "verify", help="Walk every chain; exit non-zero at a broken link."
        )
        actions.add_parser(
            "anchor", help="Append each chain's latest hash to the anchor log."
        )
        prune = actions.add_parser(
            "prune", help="Remove events older than the retention period."
        )
        prune.add_argument(
            "--days",
            type=int,
            default=None,
            help="Keep this many days (default TMC_AUDIT_RETENTION_DAYS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = settings.TMC_AUDIT_ANCHOR_FILE
        if options["action"] == "anchor":
            written = anchors_write(path=path)
            self.stdout.write(f"Anchored {written} chains in {path}.")
        elif options["action"] == "prune":
            days = options["days"] or settings.TMC_AUDIT_RETENTION_DAYS
            if days < 1:
                raise CommandError("--days must be at least 1.")
            report = events_prune(
                before=timezone.now() - timedelta(days=days), anchors_path=path
            )
            self.stdout.write(
                f"Removed {report.events} events older than {days} days "
                f"from {report.chains} chains; anchors kept in {path}."
            )
        else:
            self._verify(path)

    def _verify(self, path: Any) -> None:
        if not path.exists():
            self.stderr.write(
                f"No anchor log at {path}: a rewrite of the whole log could not "
                "be detected. Run `tmc audit anchor` (the worker does, every "
                "ten minutes)."
            )
        try:
            report = chains_verify(anchors_path=path)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for problem in report.problems:
            self.stderr.write(f"BROKEN {problem}")
        summary = (
            f"{report.chains} chains, {report.events} events, "
            f"{report.anchors} anchors checked"
        )
        if not report.ok:
            raise CommandError(f"The activity log fails verification ({summary}).")
        self.stdout.write(self.style.SUCCESS(f"The activity log verifies: {summary}."))
