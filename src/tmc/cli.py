"""The ``tmc`` command: TMC's own commands, and Django's behind ``manage``."""

from __future__ import annotations

import os
import sys

from tmc.lib import env, keys

USAGE = """\
usage: tmc COMMAND [options]

commands:
  init             create TMC_HOME, its secrets and the database (safe to repeat)
  demo             init, seed a demo organisation, run web + worker + simulator
  serve            serve the web app and API with uvicorn
  worker           run the background worker (sending, delivery reports)
  create-account   open a client organisation with its Controller
  staff create     add a provider staff member (password from stdin)
  audit ACTION     the activity log: verify, anchor or prune
  contacts import  import contacts from a CSV file, with progress
  keys rotate      rotate the master key, or an organisation's data key
  numbers ACTION   the virtual numbers replies come to: add, list or retire
  routes ACTION    routes by number prefix and gateway health: list, set, delete, reset
  simulate reply   act as a simulated handset texting one of our numbers
  smpp             hold the SMPP binds that carry messages (TMC_SMPP_* or --provider)
  gateway test     send one text through a provider and wait for its receipt
  smtp             run the email-to-SMS server (mail to <number>@TMC_SMS_DOMAIN)
  segments         count a text's encoding and parts (text on stdin, JSON out)
  apikey ACTION    API keys: create (printed once), list or revoke
  manage ARGS      run a Django management command

Run `tmc COMMAND --help` for a command's options.
"""

COMMANDS = {
    "init": "init",
    "demo": "demo",
    "serve": "serve",
    "worker": "run_huey",
    "create-account": "create_account",
    "staff": "staff",
    "audit": "audit",
    "contacts": "contacts",
    "keys": "keys",
    "numbers": "numbers",
    "routes": "routes",
    "simulate": "simulate",
    "smpp": "smpp",
    "gateway": "gateway",
    "smtp": "smtp",
    "segments": "segments",
    "apikey": "apikey",
}


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help", "help"}:
        sys.stdout.write(USAGE)
        sys.exit(0 if args else 2)

    name, rest = args[0], args[1:]
    if name == "manage":
        django_args = rest or ["help"]
    elif name in COMMANDS:
        django_args = [COMMANDS[name], *rest]
    else:
        sys.stderr.write(f"tmc: unknown command {name!r}\n\n{USAGE}")
        sys.exit(2)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tmc.settings")
    if name == "demo":
        # The demo serves plain HTTP on loopback, where secure-only cookies
        # would make logging in impossible.
        os.environ.setdefault("TMC_DEBUG", "1")

    from django.core.exceptions import ImproperlyConfigured

    try:
        if name in {"init", "demo"}:
            keys.ensure_secrets(env.read_home())
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018  (load settings now, fail clearly)
    except (ImproperlyConfigured, env.ConfigurationError) as exc:
        sys.stderr.write(f"tmc: configuration error: {exc}\n")
        sys.exit(2)

    from django.core.management import execute_from_command_line

    execute_from_command_line(["tmc", *django_args])
