from django.db import migrations


def move_sequence_past_given_ids(apps, schema_editor):
    # Members created with the integrator's own ids before the service moved the sequence: the next
    # generated id must not be one of theirs.
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('coupons_member', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL)"
            " FROM coupons_member"
        )


class Migration(migrations.Migration):
    dependencies = [("coupons", "0007_member_profiles")]

    operations = [migrations.RunPython(move_sequence_past_given_ids, migrations.RunPython.noop)]
