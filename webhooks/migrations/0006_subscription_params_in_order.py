from django.db import migrations

import webhooks.models


def params_as_pairs(apps, schema_editor):
    # Stored objects become [key, value] pairs; on PostgreSQL jsonb already lost their order, which is kept
    # from here on.
    Subscription = apps.get_model("webhooks", "Subscription")
    for subscription in Subscription.objects.iterator():
        subscription.save(update_fields=["params"])


class Migration(migrations.Migration):
    dependencies = [("webhooks", "0005_event_request_id")]

    operations = [
        migrations.AlterField(
            model_name="subscription",
            name="params",
            field=webhooks.models.OrderedMappingField(
                blank=True, default=dict, help_text='Uniqodo callback: {"parameter name": "data item"}'
            ),
        ),
        migrations.RunPython(params_as_pairs, migrations.RunPython.noop),
    ]
