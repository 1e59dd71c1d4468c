from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.accounts.encryption import KeyUnavailable
from tmc.accounts.keyrotation import (
    BATCH_ROWS,
    KeyRotation,
    master_key_rotate,
    organisation_key_rotate,
)
from tmc.accounts.models import Organisation
from tmc.lib.keys import MissingSecretError
from tmc.lib.progress import ProgressBar

ROTATE_HELP = """\
--master: make a new master key in TMC_HOME and re-wrap every organisation's
keys with it (seconds, whatever the amount of data); the old master key file
is removed once nothing uses it.

--org: make a new data key current for one organisation and re-encrypt all
its sealed values under it, in batches, while the application keeps
serving. Safe to stop: running it again continues where it stopped. The old
data key is destroyed once no row uses it. The blind-index key (used to find
numbers without decrypting them) is not rotated.
"""


class Command(BaseCommand):
    help = "Encryption keys: rotate the master key or an organisation's data key."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        rotate = actions.add_parser(
            "rotate",
            help="Rotate a key.",
            description=ROTATE_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        which = rotate.add_mutually_exclusive_group(required=True)
        which.add_argument(
            "--master", action="store_true", help="Rotate the master key."
        )
        which.add_argument(
            "--org",
            metavar="ORG",
            help="Rotate this organisation's data key (its id or exact name).",
        )
        rotate.add_argument(
            "--batch-size",
            type=int,
            help=f"Rows per transaction (default {BATCH_ROWS}).",
        )
        rotate.add_argument(
            "--max-batches",
            type=int,
            default=None,
            help="Stop after this many batches; run again to continue.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        given = [n for n in ("batch_size", "max_batches") if options[n] is not None]
        if options["master"]:
            if given:
                raise CommandError(
                    "--batch-size and --max-batches go with --org, not --master."
                )
            self._master()
            return
        for name in given:
            if options[name] < 1:
                flag = "--" + name.replace("_", "-")
                raise CommandError(f"{flag} must be at least 1.")
        self._organisation(
            _organisation(options["org"]),
            batch_rows=options["batch_size"] or BATCH_ROWS,
            max_batches=options["max_batches"],
        )

    def _master(self) -> None:
        try:
            fingerprint, count = master_key_rotate()
        except MissingSecretError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"New master key {fingerprint}: {count:,} keys re-wrapped."
            )
        )

    def _organisation(
        self, organisation: Organisation, *, batch_rows: int, max_batches: int | None
    ) -> None:
        bar = ProgressBar()

        def waiting(seconds: float) -> None:
            bar.close()
            self.stderr.write(
                f"Waiting {seconds:.0f} s until no process can still be "
                "sealing with the old key..."
            )

        try:
            rotation = organisation_key_rotate(
                organisation=organisation,
                batch_rows=batch_rows,
                max_batches=max_batches,
                progress=bar.show,
                waiting=waiting,
            )
        except KeyUnavailable as exc:
            raise CommandError(
                f"{organisation.name}'s keys have been destroyed: nothing to rotate."
            ) from exc
        finally:
            bar.close()
        self._report(organisation, rotation)

    def _report(self, organisation: Organisation, rotation: KeyRotation) -> None:
        verb = "Continued" if rotation.resumed else "Started"
        self.stdout.write(
            f"{verb} the rotation of {organisation.name}'s data key to "
            f"{rotation.key_id}: {rotation.values:,} values in {rotation.rows:,} "
            "rows re-encrypted."
        )
        if rotation.finished:
            retired = ", ".join(rotation.retired) or "none"
            self.stdout.write(
                self.style.SUCCESS(f"Done. Old keys destroyed: {retired}.")
            )
            return
        if rotation.unreadable:
            raise CommandError(
                f"{rotation.unreadable:,} values did not open (moved or altered; "
                "their rows are in the log), so the old key is kept for them."
            )
        self.stdout.write(
            f"{rotation.remaining:,} rows still use the old key: run the same "
            "command again to continue."
        )


def _organisation(named: str) -> Organisation:
    found = Organisation.objects.filter(name=named)
    if named.isdigit():
        found = Organisation.objects.filter(pk=int(named)) | found
    organisations = list(found[:2])
    if len(organisations) != 1:
        raise CommandError(
            f"No organisation {named!r}."
            if not organisations
            else f"More than one organisation is called {named!r}; give its id."
        )
    return organisations[0]
