"""``tmc routes``: the platform's routes and its gateways' health.

Run by level-3 staff (who manage gateways) on the server.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from tmc.routing.models import GatewayHealth, Route
from tmc.routing.services import gateway_reset, route_delete, route_set
from tmc.routing.throughput import gateway_rate


def _problems(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(" ".join(errors) for errors in error.message_dict.values())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "Routes by number prefix, with failover, and gateway health."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="List routes and gateway health.")
        set_ = actions.add_parser(
            "set", help="Route a prefix to gateways, most preferred first."
        )
        set_.add_argument("prefix", help='E.164 prefix such as +44; "" for default')
        set_.add_argument("gateways", nargs="+", help="gateway names in order")
        delete = actions.add_parser("delete", help="Remove a prefix's route.")
        delete.add_argument("prefix")
        reset = actions.add_parser(
            "reset", help="Put a gateway back in service before its back-off ends."
        )
        reset.add_argument("gateway")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "set":
            try:
                route = route_set(
                    prefix=options["prefix"], gateways=options["gateways"]
                )
            except ValidationError as exc:
                raise CommandError(_problems(exc)) from exc
            self.stdout.write(f"Route {route}.")
        elif action == "delete":
            if not route_delete(prefix=options["prefix"]):
                raise CommandError(f"No route for prefix {options['prefix']!r}.")
            self.stdout.write("Route deleted.")
        elif action == "reset":
            gateway_reset(name=options["gateway"])
            self.stdout.write(f"Gateway {options['gateway']} back in service.")
        else:
            self._list()

    def _list(self) -> None:
        self.stdout.write(f"{'prefix':<10} gateways, most preferred first")
        for route in Route.objects.all():
            prefix = route.prefix or "(default)"
            self.stdout.write(f"{prefix:<10} {', '.join(route.gateways)}")
        now = timezone.now()
        names = {name for route in Route.objects.all() for name in route.gateways}
        health = {h.name: h for h in GatewayHealth.objects.all()}
        self.stdout.write("")
        self.stdout.write(f"{'gateway':<24} {'msg/s':>8} {'failures':>9}  state")
        for name in sorted(names | set(health)):
            row = health.get(name)
            down = (
                row is not None and row.down_until is not None and row.down_until > now
            )
            state = f"down until {row.down_until:%H:%M:%S}" if down and row else "up"
            failures = row.total_failures if row else 0
            self.stdout.write(
                f"{name:<24} {gateway_rate(name):>8g} {failures:>9}  {state}"
            )
