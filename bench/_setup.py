"""Start Django for a benchmark on a scratch database of its own.

SQLite: a fresh file in a temporary TMC_HOME. PostgreSQL: a fresh database
created next to the one named by ``--database-url`` and dropped afterwards,
so a benchmark never touches real data.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def django_start(database_url: str) -> str:
    """Configure and set up Django; return a label for the database used."""
    home = Path(tempfile.mkdtemp(prefix="tmc-bench-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["TMC_HOME"] = str(home)
    os.environ.setdefault("TMC_SSL_REDIRECT", "0")
    os.environ["TMC_QUEUE_NAME"] = f"tmc-bench-{uuid.uuid4().hex[:8]}"
    label = "SQLite"
    if database_url.startswith("postgres"):
        os.environ["TMC_DATABASE_URL"] = _scratch_postgres(database_url)
        label = "PostgreSQL"
    else:
        os.environ.pop("TMC_DATABASE_URL", None)

    from tmc.lib.keys import ensure_secrets

    ensure_secrets(home)
    os.environ["DJANGO_SETTINGS_MODULE"] = "tmc.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return label


def _scratch_postgres(url: str) -> str:
    import psycopg

    parts = urlsplit(url)
    scratch = f"tmc_bench_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{scratch}"')

    def drop() -> None:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')

    atexit.register(drop)
    return urlunsplit(parts._replace(path=f"/{scratch}"))


def table_copy(source: str, copy: str) -> None:
    """Create ``copy`` with the shape of ``source``: columns, keys, indexes.

    For a floor that writes the same rows as the measured path into a table
    that costs as much to write to. On PostgreSQL foreign keys are not
    copied; on SQLite they are.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"CREATE TABLE {copy} (LIKE {source} INCLUDING ALL)")
            return
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
            "ORDER BY type DESC",
            [source],
        )
        for number, (statement,) in enumerate(cursor.fetchall()):
            statement = statement.replace(f'"{source}"', f'"{copy}"')
            # Index names are unique in the whole database: give each a new one.
            statement = re.sub(
                r'\A(CREATE (?:UNIQUE )?INDEX )"[^"]+"',
                rf'\1"{copy}_{number}"',
                statement,
            )
            cursor.execute(statement)
