"""The staff roles: each group reaches what its job needs in the admin and nothing else."""

from html.parser import HTMLParser
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import CommandError, call_command
from django.test import Client

from coupons import services
from coupons.demo import DEMO_ROLE_PASSWORD, DEMO_ROLE_USERS, demo_load
from coupons.roles import ACCOUNT_MANAGER, CAMPAIGN_MANAGER, ROLES, SUPPORT, role_permissions, roles_ensure


@pytest.fixture
def as_role(db):
    def login(role: str) -> Client:
        user = User.objects.create_user(username=role.lower().replace(" ", "."), password=None, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def redemption(offer):
    (coupon,) = services.coupons_create(offer=offer, count=1)
    order = services.order_parse(order_value="100.00", currency="AUD")
    return services.coupon_redeem(code=coupon.code, order_id="order-1", order=order)[0]


def statuses(client: Client, paths: list[str]) -> dict[str, int]:
    return {path: client.get(path).status_code for path in paths}


def test_the_migration_creates_the_three_groups_with_every_permission_of_their_role(db):
    for role in ROLES:
        held = set(
            Group.objects.get(name=role).permissions.values_list("content_type__app_label", "codename")
        )
        assert held == {(app, codename) for app, _, codename in role_permissions(role)}


def test_roles_ensure_puts_back_what_was_removed_and_takes_away_what_was_added(db):
    group = Group.objects.get(name=SUPPORT)
    group.permissions.remove(Permission.objects.get(codename="change_redemption"))
    group.permissions.add(Permission.objects.get(codename="delete_offer"))

    roles_ensure()
    roles_ensure()

    codenames = set(group.permissions.values_list("codename", flat=True))
    assert "change_redemption" in codenames and "delete_offer" not in codenames


def test_no_role_touches_api_keys(db):
    for role in ROLES:
        assert not Group.objects.get(name=role).permissions.filter(content_type__model="apikey").exists()


def test_the_demo_has_one_staff_user_per_role_who_can_log_in(db):
    demo_load()

    for username, role in DEMO_ROLE_USERS.items():
        user = User.objects.get(username=username)
        assert user.is_staff and not user.is_superuser
        assert list(user.groups.values_list("name", flat=True)) == [role]
        assert Client().login(username=username, password=DEMO_ROLE_PASSWORD)


# --- Campaign manager -------------------------------------------------------------------------


def test_a_campaign_manager_runs_offers_codes_jobs_members_and_reports(as_role, offer, redemption):
    client = as_role(CAMPAIGN_MANAGER)
    paths = [
        "/admin/coupons/offer/", "/admin/coupons/offer/add/", f"/admin/coupons/offer/{offer.pk}/change/",
        "/admin/coupons/coupon/", "/admin/coupons/job/", "/admin/coupons/member/", "/admin/coupons/member/add/",
        "/admin/coupons/redemption/", "/admin/coupons/merchant/add/", "/admin/reports/",
    ]  # fmt: skip

    assert statuses(client, paths) == dict.fromkeys(paths, 200)


def test_a_campaign_manager_cannot_reach_api_keys_or_delete_offers(as_role, offer):
    client = as_role(CAMPAIGN_MANAGER)

    assert statuses(client, [
        "/admin/coupons/apikey/", "/admin/coupons/apikey/add/", f"/admin/coupons/offer/{offer.pk}/delete/",
    ]) == {
        "/admin/coupons/apikey/": 403, "/admin/coupons/apikey/add/": 403,
        f"/admin/coupons/offer/{offer.pk}/delete/": 403,
    }  # fmt: skip


def test_a_campaign_manager_cannot_roll_back_a_redemption(as_role, redemption):
    client = as_role(CAMPAIGN_MANAGER)

    client.post(
        "/admin/coupons/redemption/",
        {"action": "rollback", "_selected_action": [redemption.pk], "confirm": "yes"},
    )

    redemption.refresh_from_db()
    assert redemption.rolled_back_at is None


class FormFields(HTMLParser):
    """What a browser would submit from one form of a page: its fields with their current values."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, []
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        elif not self.inside or "name" not in attrs and tag != "option":
            return
        elif tag == "input" and attrs.get("type") not in ("submit", "button", "file", "checkbox", "radio"):
            self.data.append((attrs["name"], attrs.get("value", "")))
        elif tag == "input" and "checked" in attrs:
            self.data.append((attrs["name"], attrs.get("value", "on")))
        elif tag == "select":
            self.select = attrs["name"]
        elif tag == "option" and self.select and "selected" in attrs:
            self.data.append((self.select, attrs.get("value", "")))
        elif tag == "textarea":
            self.textarea = attrs["name"]
            self.data.append((self.textarea, ""))

    def handle_endtag(self, tag):
        self.inside = self.inside and tag != "form"
        self.select = None if tag == "select" else self.select
        self.textarea = None if tag == "textarea" else self.textarea

    def handle_data(self, data):
        if self.textarea:
            self.data[-1] = (self.textarea, self.data[-1][1] + data)


def submitted(html: str, form_id: str, **changes) -> dict[str, list[str]]:
    parser = FormFields(form_id)
    parser.feed(html)
    data: dict[str, list[str]] = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    return data | {name: [value] for name, value in changes.items()}


def test_a_campaign_manager_edits_an_offer(as_role, offer):
    client = as_role(CAMPAIGN_MANAGER)
    url = f"/admin/coupons/offer/{offer.pk}/change/"
    data = submitted(client.get(url).content.decode(), "offer_form", name="Renamed by the campaign manager")

    response = client.post(url, data)

    assert response.status_code == 302
    offer.refresh_from_db()
    assert offer.name == "Renamed by the campaign manager"


@pytest.mark.parametrize(("role", "status"), [(CAMPAIGN_MANAGER, "inactive"), (SUPPORT, "active")])
def test_campaign_managers_deactivate_codes_and_support_cannot(as_role, offer, role, status):
    (coupon,) = services.coupons_create(offer=offer, count=1)
    client = as_role(role)

    client.post(
        "/admin/coupons/coupon/", {"action": "deactivate", "_selected_action": [coupon.pk], "confirm": "yes"}
    )

    coupon.refresh_from_db()
    assert coupon.status == status


# --- Support ----------------------------------------------------------------------------------


def test_support_sees_everything_coupon_side(as_role, offer, redemption):
    client = as_role(SUPPORT)
    paths = [
        "/admin/coupons/offer/", f"/admin/coupons/offer/{offer.pk}/change/", "/admin/coupons/coupon/",
        f"/admin/coupons/coupon/{redemption.coupon_id}/change/", "/admin/coupons/member/", "/admin/coupons/job/",
        "/admin/coupons/redemption/", f"/admin/coupons/redemption/{redemption.pk}/change/", "/admin/coupons/merchant/",
        "/admin/coupons/site/", "/admin/coupons/location/", "/admin/coupons/distributor/", "/admin/reports/",
    ]  # fmt: skip

    assert statuses(client, paths) == dict.fromkeys(paths, 200)


def test_support_rolls_back_a_redemption(as_role, redemption):
    client = as_role(SUPPORT)

    response = client.post(
        "/admin/coupons/redemption/",
        {"action": "rollback", "_selected_action": [redemption.pk], "confirm": "yes"},
    )

    assert response.status_code == 302
    redemption.refresh_from_db()
    assert redemption.rolled_back_at is not None


def test_support_edits_no_offer_and_deletes_nothing(as_role, offer, redemption):
    client = as_role(SUPPORT)
    paths = [
        "/admin/coupons/offer/add/", f"/admin/coupons/offer/{offer.pk}/delete/",
        f"/admin/coupons/coupon/{redemption.coupon_id}/delete/", f"/admin/coupons/redemption/{redemption.pk}/delete/",
        "/admin/coupons/member/add/", "/admin/coupons/apikey/",
    ]  # fmt: skip

    assert statuses(client, paths) == dict.fromkeys(paths, 403)
    assert client.post(f"/admin/coupons/offer/{offer.pk}/change/", {"name": "Changed"}).status_code == 403
    page = client.get(f"/admin/coupons/offer/{offer.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    offer.refresh_from_db()
    assert offer.name != "Changed"


# --- Account manager --------------------------------------------------------------------------


def test_an_account_manager_sees_offers_but_no_codes_members_or_api_keys(as_role, offer):
    client = as_role(ACCOUNT_MANAGER)
    allowed = ["/admin/coupons/offer/", f"/admin/coupons/offer/{offer.pk}/change/", "/admin/reports/"]
    refused = [
        "/admin/coupons/coupon/", "/admin/coupons/member/", "/admin/coupons/redemption/", "/admin/coupons/apikey/",
        "/admin/coupons/offer/add/", "/admin/coupons/job/",
    ]  # fmt: skip

    assert statuses(client, allowed + refused) == dict.fromkeys(allowed, 200) | dict.fromkeys(refused, 403)


WEBHOOK_PAGES = [
    "/admin/webhooks/subscription/", "/admin/webhooks/subscription/add/", "/admin/webhooks/delivery/",
    "/admin/webhooks/attempt/", "/admin/webhooks/event/",
]  # fmt: skip


def test_an_account_manager_runs_the_webhooks(as_role):
    client = as_role(ACCOUNT_MANAGER)

    assert statuses(client, WEBHOOK_PAGES) == dict.fromkeys(WEBHOOK_PAGES, 200)


def test_an_account_manager_limits_a_subscription_to_an_offer_through_the_autocomplete(as_role, offer):
    client = as_role(ACCOUNT_MANAGER)
    query = "app_label=webhooks&model_name=subscription&field_name=offers"

    response = client.get(f"/admin/autocomplete/?term={offer.name}&{query}")

    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == [offer.name]


@pytest.mark.parametrize("role", [CAMPAIGN_MANAGER, SUPPORT])
def test_campaign_managers_and_support_stay_out_of_the_webhooks(as_role, role):
    client = as_role(role)

    assert statuses(client, WEBHOOK_PAGES) == dict.fromkeys(WEBHOOK_PAGES, 403)


def test_staff_without_a_role_reach_nothing(db, offer):
    client = Client()
    client.force_login(User.objects.create_user(username="nobody", password=None, is_staff=True))
    paths = ["/admin/coupons/offer/", "/admin/coupons/coupon/", "/admin/reports/"]

    assert statuses(client, paths) == dict.fromkeys(paths, 403)


def test_loaddemo_refuses_to_run_when_debug_is_off(db, settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--force"):
        call_command("loaddemo", stdout=StringIO())
    assert not User.objects.filter(username="admin").exists()


def test_loaddemo_runs_when_debug_is_off_if_forced(db, settings):
    settings.DEBUG = False
    out = StringIO()
    call_command("loaddemo", "--force", stdout=out)
    assert "admin / admin" in out.getvalue()


def test_loaddemo_runs_in_development(db, settings):
    settings.DEBUG = True
    call_command("loaddemo", stdout=StringIO())
    assert User.objects.filter(username="admin").exists()
