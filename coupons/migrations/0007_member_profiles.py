"""Members keep only their id; what each owner told the platform about them moves to that owner's profile."""

import django.db.models.deletion
import uuid
from django.db import migrations, models


def profiles_from_members(apps, schema_editor):
    """Each merchant whose offers hold a member's codes or redemptions gets a copy of what was known.

    The member's uuid (the hub's user_profile_id) stays with the first such merchant. A member no offer
    ties to a merchant goes to the only merchant when there is one, and otherwise to a profile only
    staff see, so no owner is handed what another one told.
    """
    Member = apps.get_model("coupons", "Member")
    MemberProfile = apps.get_model("coupons", "MemberProfile")
    Coupon = apps.get_model("coupons", "Coupon")
    Redemption = apps.get_model("coupons", "Redemption")
    Merchant = apps.get_model("coupons", "Merchant")
    owners: dict[int, set[int]] = {}
    for member_id, merchant_id in (
        Coupon.objects.filter(member__isnull=False).values_list("member_id", "offer__merchant_id").distinct()
    ):
        owners.setdefault(member_id, set()).add(merchant_id)
    for member_id, merchant_id in (
        Redemption.objects.filter(member__isnull=False).values_list("member_id", "merchant_id").distinct()
    ):
        owners.setdefault(member_id, set()).add(merchant_id)
    merchants = list(Merchant.objects.values_list("id", flat=True)[:2])
    only_merchant = merchants[0] if len(merchants) == 1 else None
    profiles = []
    for member in Member.objects.order_by("id").iterator(chunk_size=2000):
        merchant_ids = sorted(owners.get(member.id, ())) or [only_merchant]
        for index, merchant_id in enumerate(merchant_ids):
            profiles.append(MemberProfile(
                member_id=member.id, merchant_id=merchant_id, uuid=member.uuid if index == 0 else uuid.uuid4(),
                member_no=member.member_no, external_id=member.external_id, email=member.email,
                attributes=member.attributes or {}, created_at=member.created_at,
            ))  # fmt: skip
        if len(profiles) >= 2000:
            MemberProfile.objects.bulk_create(profiles)
            profiles = []
    MemberProfile.objects.bulk_create(profiles)


def members_from_profiles(apps, schema_editor):
    Member = apps.get_model("coupons", "Member")
    MemberProfile = apps.get_model("coupons", "MemberProfile")
    for profile in MemberProfile.objects.order_by("member_id", "id").distinct():
        Member.objects.filter(pk=profile.member_id, member_no__isnull=True, email__isnull=True).update(
            uuid=profile.uuid, member_no=profile.member_no, external_id=profile.external_id,
            email=profile.email, attributes=profile.attributes,
        )  # fmt: skip


def roles_update(apps, schema_editor):
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    create_permissions(global_apps.get_app_config("coupons"), verbosity=0, apps=apps)
    from coupons.roles import roles_ensure

    roles_ensure(apps)


class Migration(migrations.Migration):

    dependencies = [
        ('coupons', '0006_coupon_code_unique_constraint'),
    ]

    operations = [
        migrations.CreateModel(
            name='MemberProfile',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('uuid', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('member_no', models.CharField(blank=True, max_length=64, null=True)),
                ('external_id', models.CharField(blank=True, db_index=True, max_length=200, null=True)),
                ('email', models.EmailField(blank=True, db_index=True, max_length=254, null=True)),
                ('attributes', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('distributor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='member_profiles', to='coupons.distributor')),
                ('member', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='profiles', to='coupons.member')),
                ('merchant', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='member_profiles', to='coupons.merchant')),
            ],
            options={
                'ordering': ['member_id', 'id'],
                'constraints': [models.CheckConstraint(condition=models.Q(('merchant__isnull', True), ('distributor__isnull', True), _connector='OR'), name='member_profile_one_owner'), models.UniqueConstraint(condition=models.Q(('merchant__isnull', False)), fields=('merchant', 'member'), name='member_profile_unique_per_merchant'), models.UniqueConstraint(condition=models.Q(('distributor__isnull', False)), fields=('distributor', 'member'), name='member_profile_unique_per_distributor'), models.UniqueConstraint(condition=models.Q(('distributor__isnull', True), ('merchant__isnull', True)), fields=('member',), name='member_profile_unique_unowned'), models.UniqueConstraint(condition=models.Q(('member_no__isnull', False), ('merchant__isnull', False)), fields=('merchant', 'member_no'), name='member_profile_unique_number_per_merchant'), models.UniqueConstraint(condition=models.Q(('distributor__isnull', False), ('member_no__isnull', False)), fields=('distributor', 'member_no'), name='member_profile_unique_number_per_distributor')],
            },
        ),
        migrations.RunPython(profiles_from_members, members_from_profiles),
        migrations.RemoveField(
            model_name='member',
            name='attributes',
        ),
        migrations.RemoveField(
            model_name='member',
            name='email',
        ),
        migrations.RemoveField(
            model_name='member',
            name='external_id',
        ),
        migrations.RemoveField(
            model_name='member',
            name='member_no',
        ),
        migrations.RemoveField(
            model_name='member',
            name='uuid',
        ),
        migrations.RunPython(roles_update, migrations.RunPython.noop),
    ]
