"""Keep only the indexes of the activity log that its screens use.

Each index is one more write on every append. The composite indexes on
(organisation, -created_at) and (actor, -created_at) stay: they serve the
log's pages and the foreign keys' own lookups. The single-column indexes on
action, actor, created_at and organisation go.

The indexes are dropped by name rather than through ``AlterField``, which on
SQLite would copy the whole table once per field.
"""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

COLUMNS = ("action", "actor_id", "created_at", "organisation_id")
FIELDS = ("action", "actor", "created_at", "organisation")


def drop_indexes(apps, schema_editor):
    Event = apps.get_model("audit", "Event")
    table = Event._meta.db_table
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    for name, constraint in sorted(constraints.items()):
        if (
            constraint["index"]
            and not constraint["unique"]
            and not constraint["primary_key"]
            and len(constraint["columns"]) == 1
            and constraint["columns"][0] in COLUMNS
        ):
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def restore_indexes(apps, schema_editor):
    Event = apps.get_model("audit", "Event")
    for name in FIELDS:
        field = Event._meta.get_field(name)
        schema_editor.execute(schema_editor._create_index_sql(Event, fields=[field]))
        like = getattr(schema_editor, "_create_like_index_sql", None)
        if like is not None and (statement := like(Event, field)) is not None:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_organisation_is_trial"),
        ("audit", "0002_event_chain"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunPython(drop_indexes, restore_indexes),
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="event",
                    name="action",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="created_at",
                    field=models.DateTimeField(default=django.utils.timezone.now),
                ),
                migrations.AlterField(
                    model_name="event",
                    name="organisation",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.PROTECT,
                        to="accounts.organisation",
                    ),
                ),
            ],
        ),
    ]
