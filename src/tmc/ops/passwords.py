"""Read a new password for a command, from standard input or a prompt.

Passwords never come from the command line, where other users of the
machine can read them in the process list and shells keep them in history.
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from django.core.management.base import CommandError


def read_new_password(stdin: TextIO | None = None) -> str:
    stream = stdin or sys.stdin
    if not stream.isatty():
        password = stream.readline().rstrip("\r\n")
        if not password:
            raise CommandError("No password on standard input.")
        return password

    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Password (again): "):
        raise CommandError("The passwords do not match.")
    return password
