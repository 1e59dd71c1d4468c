"""Chain the activity log: actor kind, request id, hash chain and chain heads.

Events recorded before this migration are chained in the order they were
written (by id), one chain per organisation, so verify holds from the start.
"""

from django.db import migrations, models

from tmc.audit.chain import HASHED_FIELDS, event_hash

GENESIS = "0" * 64


def chain_existing(apps, schema_editor):
    Event = apps.get_model("audit", "Event")
    ChainHead = apps.get_model("audit", "ChainHead")
    heads = {}
    for event in Event.objects.order_by("id").iterator():
        chain = (
            "platform"
            if event.organisation_id is None
            else f"org:{event.organisation_id}"
        )
        sequence, previous = heads.get(chain, (0, GENESIS))
        event.chain = chain
        event.sequence = sequence + 1
        event.previous_hash = previous
        if event.actor_id is not None:
            event.actor_kind = "user"
            event.actor_ref = str(event.actor_id)
        elif event.actor_label.startswith("staff:"):
            event.actor_kind = "staff"
        elif event.actor_label in {"anonymous", "unknown"}:
            event.actor_kind = "anonymous"
        event.hash = event_hash({name: getattr(event, name) for name in HASHED_FIELDS})
        event.save()
        heads[chain] = (event.sequence, event.hash)
    for chain, (sequence, last) in heads.items():
        ChainHead.objects.create(chain=chain, last_sequence=sequence, last_hash=last)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("audit", "0001_initial"),
        ("identity", "0005_usersession_device"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChainHead",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("chain", models.CharField(max_length=40, unique=True)),
                ("last_sequence", models.PositiveBigIntegerField(default=0)),
                ("last_hash", models.CharField(default=GENESIS, max_length=64)),
                ("base_sequence", models.PositiveBigIntegerField(default=0)),
                ("base_hash", models.CharField(default=GENESIS, max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name="event",
            name="chain",
            field=models.CharField(default="", max_length=40),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="event",
            name="sequence",
            field=models.PositiveBigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="event",
            name="actor_kind",
            field=models.CharField(
                choices=[
                    ("user", "User"),
                    ("staff", "Staff"),
                    ("api_key", "API key"),
                    ("system", "System"),
                    ("anonymous", "Anonymous"),
                ],
                default="system",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="event",
            name="actor_ref",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="event",
            name="request_id",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="event",
            name="previous_hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="event",
            name="hash",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("chain", "sequence"), name="audit_event_chain_sequence"
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["organisation", "-created_at"],
                name="audit_event_organis_7c9d62_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                fields=["actor", "-created_at"], name="audit_event_actor_i_79f520_idx"
            ),
        ),
    ]
