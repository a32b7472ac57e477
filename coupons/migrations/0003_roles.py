"""The staff groups Account manager, Campaign manager and Support with their permissions."""

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.db import migrations


def roles_create(apps, schema_editor):
    # Permissions normally appear only after post_migrate, at the end of the whole migrate run;
    # the groups need them now.
    for label in ("contenttypes", "auth", "coupons", "webhooks"):
        create_permissions(global_apps.get_app_config(label), verbosity=0, apps=apps)
    from coupons.roles import roles_ensure

    roles_ensure(apps)


def roles_remove(apps, schema_editor):
    from coupons.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("coupons", "0002_offer_report_permission_pool_index"),
        ("webhooks", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_create, roles_remove)]
