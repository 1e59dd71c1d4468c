from django.db import migrations, models
from django.db.models import F


def existing_replies_are_matched(apps, schema_editor):
    # Replies stored before matching moved to batches were matched on arrival.
    inbound = apps.get_model("messaging", "InboundMessage")
    inbound.objects.filter(matched_at__isnull=True).update(matched_at=F("received_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0008_message_cancelled"),
    ]

    operations = [
        migrations.AddField(
            model_name="inboundmessage",
            name="matched_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(existing_replies_are_matched, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("matched_at__isnull", True)),
                fields=["id"],
                name="messaging_inbound_pending",
            ),
        ),
    ]
