from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_organisation_is_trial"),
    ]

    operations = [
        migrations.AddField(
            model_name="organisation",
            name="message_validity_hours",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
    ]
