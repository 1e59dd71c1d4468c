from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tmc.accounts.models import Organisation
from tmc.accounts.services import organisation_named
from tmc.api.models import ApiKey, Scope
from tmc.api.services import api_key_create, api_key_revoke
from tmc.identity.models import User


def _problems(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(" ".join(errors) for errors in error.message_dict.values())
    return " ".join(error.messages)


def _expiry(text: str) -> datetime:
    """An ISO date (the end of that day, local time) or date and time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(
            f"--expires {text!r} is not a date (2025-12-31) or date and time."
        ) from exc
    if len(text) <= 10:
        moment = datetime.combine(moment.date(), time.max)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


class Command(BaseCommand):
    help = "API keys: create one (printed once), list them, or revoke one."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Make a key and print it once.")
        create.add_argument("--org", required=True, help="Organisation id or name.")
        create.add_argument("--user", required=True, help="The username it acts as.")
        create.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated, of: {', '.join(Scope.values)}.",
        )
        create.add_argument("--name", default="Command line", help="A label.")
        create.add_argument("--expires", help="Expiry: 2025-12-31 or ISO date-time.")
        create.add_argument(
            "--ip",
            action="append",
            default=[],
            help="An address or CIDR range it may be used from; repeat for more.",
        )
        listing = actions.add_parser("list", help="List an organisation's keys.")
        listing.add_argument("--org", required=True)
        revoke = actions.add_parser("revoke", help="Revoke a key at once.")
        revoke.add_argument("--org", required=True)
        revoke.add_argument("prefix", help="The key's first characters, as listed.")

    def handle(self, *args: Any, **options: Any) -> None:
        organisation = self._organisation(options["org"])
        if options["action"] == "create":
            self._create(organisation, options)
        elif options["action"] == "revoke":
            self._revoke(organisation, options["prefix"])
        else:
            self._list(organisation)

    def _organisation(self, org: str) -> Organisation:
        found = organisation_named(org)
        if found is None:
            raise CommandError(f"No organisation {org!r}.")
        return found

    def _create(self, organisation: Organisation, options: dict[str, Any]) -> None:
        user = User.objects.filter(
            organisation=organisation, username__iexact=options["user"]
        ).first()
        if user is None:
            raise CommandError(f"No user {options['user']!r} in {organisation.name}.")
        expires = _expiry(options["expires"]) if options.get("expires") else None
        try:
            created = api_key_create(
                actor=None,
                user=user,
                name=options["name"],
                scopes=options["scopes"].split(","),
                expires_at=expires,
                allowed_networks=options["ip"],
            )
        except (ValidationError, PermissionDenied) as exc:
            problem = _problems(exc) if isinstance(exc, ValidationError) else str(exc)
            raise CommandError(f"No key made. {problem}") from exc
        self.stderr.write(
            f"Key {created.key.prefix}… for {user.username}; it is shown only "
            "now, so store it in your program's secrets:"
        )
        self.stdout.write(created.raw)

    def _list(self, organisation: Organisation) -> None:
        keys = ApiKey.objects.for_organisation(organisation).select_related("user")
        self.stdout.write(f"{'prefix':<14} {'user':<20} {'scopes':<40} state")
        for key in keys:
            if key.is_revoked:
                state = "revoked"
            elif key.is_expired():
                state = "expired"
            else:
                state = "active"
            scopes = ",".join(key.scopes)
            self.stdout.write(
                f"{key.prefix:<14} {key.user.username[:20]:<20} {scopes:<40} {state}"
            )

    def _revoke(self, organisation: Organisation, prefix: str) -> None:
        found = list(
            ApiKey.objects.for_organisation(organisation).filter(
                prefix__startswith=prefix[:16], revoked_at__isnull=True
            )[:2]
        )
        if len(found) != 1 or len(prefix) < 8:
            raise CommandError(
                "Give at least 8 characters naming exactly one live key "
                "(see `tmc apikey list`)."
            )
        api_key_revoke(actor=None, key=found[0])
        self.stdout.write(f"Revoked {found[0].prefix}….")
