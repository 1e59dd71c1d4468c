from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tmc.accounts.models import Organisation
from tmc.contacts.importing import (
    ENCODINGS,
    STANDARD_FIELDS,
    ImportFileError,
    import_map,
    import_prepare,
    import_run,
)
from tmc.contacts.models import Group, ImportJob
from tmc.identity.models import Role, User

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "The address book from the command line."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        imports = actions.add_parser(
            "import", help="Import contacts from a CSV file, with progress."
        )
        imports.add_argument("file", type=Path)
        imports.add_argument(
            "--org", required=True, help="The organisation's id or exact name."
        )
        imports.add_argument(
            "--user",
            help="Username the import is done as (default: its first Controller).",
        )
        imports.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help=(
                f"Column for a field ({', '.join(STANDARD_FIELDS)}, or a custom "
                "field's key); repeat it. Unmapped columns are guessed from their "
                "headers."
            ),
        )
        imports.add_argument("--group", help="Add every imported contact to it.")
        imports.add_argument("--encoding", default="utf-8", choices=list(ENCODINGS))

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = _organisation(options["org"])
        user = _user(organisation, options["user"])
        group = _group(organisation, options["group"])
        path: Path = options["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc

        try:
            job = import_prepare(
                user=user,
                file_name=path.name,
                data=data,
                encoding=options["encoding"],
            )
        except ImportFileError as exc:
            raise CommandError(f"Nothing imported. {exc}") from exc
        mapping = _mapping(job, options["map"])
        try:
            import_map(user=user, job=job, mapping=mapping, group=group, enqueue=False)
        except ValidationError as exc:
            job.delete()
            raise CommandError(f"Nothing imported. {_problems(exc)}") from exc

        bar = _ProgressBar(job.total_rows)
        job = import_run(job_id=job.pk, progress=bar.show)
        bar.close()
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {job.total_rows:,} rows: {job.created_count:,} new "
                f"contacts, {job.merged_count:,} merged, {job.invalid_count:,} "
                f"skipped, {job.opted_out_count:,} on the opt-out list."
            )
        )
        for line, reason in job.problems:
            self.stdout.write(f"  line {line}: {reason}")
        if job.invalid_count > len(job.problems):
            self.stdout.write(
                f"  … and {job.invalid_count - len(job.problems):,} more."
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


def _user(organisation: Organisation, username: str | None) -> User:
    users = User.objects.filter(organisation=organisation, is_active=True)
    user = (
        users.filter(username__iexact=username).first()
        if username
        else users.filter(role=Role.CONTROLLER).order_by("pk").first()
    )
    if user is None:
        raise CommandError(
            f"{organisation.name} has no active user {username!r}."
            if username
            else f"{organisation.name} has no active Controller."
        )
    return user


def _group(organisation: Organisation, name: str | None) -> Group | None:
    if not name:
        return None
    group = Group.objects.filter(organisation=organisation, name__iexact=name).first()
    if group is None:
        raise CommandError(f"{organisation.name} has no group {name!r}.")
    return group


def _mapping(job: ImportJob, pairs: list[str]) -> dict[str, Any]:
    mapping: dict[str, Any] = {**job.mapping, "fields": dict(job.mapping["fields"])}
    for pair in pairs:
        target, sep, column = pair.partition("=")
        if not sep or not target or not column:
            job.delete()
            raise CommandError(f"--map takes FIELD=COLUMN, not {pair!r}.")
        # A column chosen by hand is no longer a guessed custom field.
        mapping["fields"] = {
            key: header for key, header in mapping["fields"].items() if header != column
        }
        if target in STANDARD_FIELDS:
            mapping[target] = column
        else:
            mapping["fields"][target] = column
    return mapping


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
    )


class _ProgressBar:
    """A bar on standard error that redraws in place, at most ten times a second."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.started = time.monotonic()
        self.drawn = 0.0
        self.live = sys.stderr.isatty()

    def show(self, job: ImportJob) -> None:
        now = time.monotonic()
        if not self.live or (now - self.drawn < 0.1 and not job.is_finished):
            return
        self.drawn = now
        done = min(job.next_row, self.total)
        filled = BAR_WIDTH * done // self.total
        rate = done / max(now - self.started, 1e-6)
        sys.stderr.write(
            f"\r[{'#' * filled}{' ' * (BAR_WIDTH - filled)}] "
            f"{100 * done // self.total:3d}% {done:,}/{self.total:,} rows "
            f"{rate:,.0f}/s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.live:
            sys.stderr.write("\n")
