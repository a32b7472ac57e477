"""The audit trail: every admin action leaves a LogEntry, every API change an AuditEntry naming its key."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEntry
from coupons import services
from coupons.models import ApiKey, Coupon, CouponStatus, Job, Redemption
from tests.factories import CouponFactory, RedemptionFactory
from tests.webhooks.factories import DeliveryFactory, SubscriptionFactory
from webhooks import retries
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def act(client, model: str, action: str, objects, **extra):
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    return client.post(url, {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra})


def history(obj) -> list[str]:
    """The change messages the object's History page lists."""
    content_type = ContentType.objects.get_for_model(obj)
    entries = LogEntry.objects.filter(content_type=content_type, object_id=str(obj.pk))
    return [entry.get_change_message() for entry in entries]


@pytest.mark.parametrize(
    "model, action, build, checked",
    [
        ("coupons.coupon", "deactivate", lambda o, s: CouponFactory(offer=o),
         lambda c: Coupon.objects.get(pk=c.pk).status == CouponStatus.INACTIVE),
        ("coupons.redemption", "rollback",
         lambda o, s: RedemptionFactory(coupon=CouponFactory(offer=o, times_redeemed=1, max_redemptions=1)),
         lambda r: Redemption.objects.get(pk=r.pk).rolled_back_at is not None),
        ("webhooks.delivery", "replay", lambda o, s: DeliveryFactory(subscription=s, status="succeeded"),
         lambda d: Delivery.objects.count() == 2),
    ],
)  # fmt: skip
def test_an_irreversible_bulk_action_asks_first_then_acts_and_logs(
    admin_client, offer, model, action, build, checked
):
    obj = build(offer, SubscriptionFactory(merchant=offer.merchant))

    page = act(admin_client, model, action, [obj])
    assert page.status_code == 200 and b'name="confirm" value="yes"' in page.content
    assert str(obj).encode() in page.content and not checked(obj) and history(obj) == []

    done = act(admin_client, model, action, [obj], confirm="yes")
    assert done.status_code == 302 and checked(obj)
    assert len(history(obj)) == 1 and "admin action" in history(obj)[0]


def test_webhook_admin_actions_leave_a_log_entry(admin_client, offer):
    subscription = SubscriptionFactory(merchant=offer.merchant)
    failed = DeliveryFactory(subscription=subscription, status="failed", next_attempt_at=None)

    act(admin_client, "webhooks.subscription", "rotate_secret", [subscription])
    act(admin_client, "webhooks.subscription", "send_test_event", [subscription])
    since = (retries.clock() - timedelta(days=1)).astimezone()
    act(
        admin_client, "webhooks.subscription", "recover_failed_since", [subscription],
        apply="1", since_0=since.strftime("%Y-%m-%d"), since_1=since.strftime("%H:%M:%S"),
    )  # fmt: skip
    act(admin_client, "webhooks.delivery", "retry_now", [failed])

    messages = history(subscription)
    assert any("Signing secret rotated" in m for m in messages)
    assert any("Test event sent" in m for m in messages)
    assert any("recovered" in m for m in messages)
    assert history(failed) == ["Retried now (admin action)."]
    page = admin_client.get(reverse("admin:webhooks_subscription_history", args=[subscription.pk]))
    assert b"Signing secret rotated" in page.content


def test_job_retry_and_code_generation_in_the_admin_leave_a_log_entry(
    admin_client, offer, django_capture_on_commit_callbacks
):
    job = Job.objects.create(kind=Job.Kind.GENERATE, offer=offer, state=Job.State.FAILED, total=10)
    act(admin_client, "coupons.job", "retry", [job])
    assert history(job) == ["Retried (admin action)."]

    act(admin_client, "coupons.offer", "generate_codes", [offer], apply="1", count="5")
    assert any("generating 5 codes" in m for m in history(offer))


@pytest.fixture
def api(offer):
    key, token = services.api_key_create(
        merchant=offer.merchant, scopes=list(ApiKey.SCOPES), name="POS till 4"
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.key = key
    return client


def test_api_changes_leave_an_audit_entry_naming_the_key_and_the_admin_lists_them(api, offer, admin_client):
    created = api.post(
        "/api/v1/offers/", {"name": "$5 off", "coupon_type": "fixedAmount", "discount_value": "5.00"},
        format="json", HTTP_X_REQUEST_ID="req-audit",
    ).json()  # fmt: skip
    api.patch(f"/api/v1/offers/{created['id']}/", {"name": "$6 off"}, format="json")
    subscription = api.post(
        "/api/v1/webhooks/subscriptions/",
        {"url": "http://127.0.0.1:9/hook", "format": "standard", "events": ["coupon.redeemed"],
         "headers": {"X-Api-Key": "receiver-password"}},
        format="json",
    ).json()  # fmt: skip
    api.patch(f"/api/v1/webhooks/subscriptions/{subscription['id']}/", {"active": False}, format="json")
    api.post(f"/api/v1/webhooks/subscriptions/{subscription['id']}/rotate-secret")
    api.delete(f"/api/v1/webhooks/subscriptions/{subscription['id']}/")
    redemption = RedemptionFactory(coupon=CouponFactory(offer=offer, times_redeemed=1, max_redemptions=1))
    assert api.post(f"/api/v1/redemptions/{redemption.pk}/rollback").status_code == 200

    entries = list(AuditEntry.objects.order_by("id"))
    assert [e.action for e in entries] == [
        "offer.create", "offer.update", "subscription.create", "subscription.update",
        "subscription.rotate_secret", "subscription.delete", "redemption.rollback",
    ]  # fmt: skip
    assert {e.api_key_id for e in entries} == {api.key.pk}
    assert all("POS till 4" in e.actor for e in entries)
    assert entries[0].request_id == "req-audit" and entries[0].object_id == str(created["id"])
    assert entries[1].changes == {"name": "$6 off"}
    assert entries[2].changes["headers"] == "[redacted]" and "receiver-password" not in str(
        entries[2].changes
    )
    assert entries[-1].object_id == str(redemption.pk)

    listing = admin_client.get(reverse("admin:audit_auditentry_changelist")).content.decode()
    assert "subscription.rotate_secret" in listing and "POS till 4" in listing


def test_a_dry_run_or_a_refused_change_leaves_no_audit_entry(api, offer):
    api.post("/api/v1/offers/", {"name": "x", "coupon_type": "fixedAmount", "discount_value": "5.00"},
             format="json", HTTP_X_DRY_RUN="true")  # fmt: skip
    api.patch(f"/api/v1/offers/{offer.id}/", {"coupon_type": "nonsense"}, format="json")
    assert not AuditEntry.objects.exists()


def test_the_audit_trail_cannot_be_edited_in_the_admin(admin_client, api, offer):
    api.patch(f"/api/v1/offers/{offer.id}/", {"name": "renamed"}, format="json")
    entry = AuditEntry.objects.get()
    assert admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk])).status_code == 200
    assert admin_client.post(reverse("admin:audit_auditentry_delete", args=[entry.pk])).status_code == 403
    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403


def test_a_key_made_on_the_command_line_is_in_the_trail_without_its_token(capsys):
    call_command("create_api_key", "--merchant", "Audit Co", "--scopes", "read", "--name", "reporting")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    entry = AuditEntry.objects.get(action="api_key.create")
    assert entry.actor == "manage.py create_api_key" and entry.object_id == str(ApiKey.objects.get().pk)
    assert entry.changes == {"scopes": ["read"], "name": "reporting"} and token not in str(vars(entry))
