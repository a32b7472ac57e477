import json

from django.db import migrations, models


def render_stored_bodies(apps, schema_editor):
    # Records kept from before: their JSON as DRF's renderer writes it (key order as the database kept it).
    records = apps.get_model("coupons", "IdempotencyRecord").objects.exclude(response_body=None)
    for record in records.iterator():
        body = json.dumps(record.response_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        record.response_content = body.encode()
        record.response_headers = {**record.response_headers, "Content-Type": "application/json"}
        record.save(update_fields=["response_content", "response_headers"])


class Migration(migrations.Migration):
    dependencies = [("coupons", "0008_member_sequence_past_given_ids")]

    operations = [
        migrations.AddField(
            model_name="idempotencyrecord", name="response_content", field=models.BinaryField(default=b"")
        ),
        migrations.RunPython(render_stored_bodies, migrations.RunPython.noop),
        migrations.RemoveField(model_name="idempotencyrecord", name="response_body"),
    ]
