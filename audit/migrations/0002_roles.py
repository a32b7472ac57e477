"""Account managers and Support read the audit trail: the roles pick up the new model's view permission."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_update(apps, schema_editor):
    # Permissions normally appear only after post_migrate; the groups need them now.
    create_permissions(global_apps.get_app_config("audit"), verbosity=0, apps=apps)
    from coupons.roles import roles_ensure

    roles_ensure(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("coupons", "0003_roles"),
    ]

    operations = [migrations.RunPython(roles_update, migrations.RunPython.noop)]
