"""Offer creation and update rules."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf

from coupons import jobs, services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Job, Offer, Site


def create(merchant, **fields):
    fields = {"name": "Offer", "coupon_type": "fixedAmount", "discount_value": Decimal("5")} | fields
    return services.offer_create(merchant=merchant, **fields)


def test_an_offer_gets_the_merchants_first_site_when_none_is_given(merchant, site):
    assert create(merchant).site == site


def test_a_merchant_without_a_site_gets_one_named_after_it(merchant):
    offer = create(merchant)
    assert offer.site.name == merchant.name and Site.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"coupon_type": "percentage", "discount_value": Decimal("120")}, "discount_value"),
        ({"coupon_type": "fixedAmount", "discount_value": None}, "discount_value"),
        ({"discount_value": Decimal("-1")}, "discount_value"),
        ({"min_order_amount": Decimal("-5")}, "min_order_amount"),
        ({"applicable_on": "product", "applicable_filters": []}, "applicable_filters"),
        ({"expiry_type": "relative", "expiry_value": None}, "expiry_value"),
        ({"coupon_type": "mystery", "mystery_discounts": []}, "mystery_discounts"),
        (
            {
                "coupon_type": "mystery",
                "mystery_discounts": [{"coupon_type": "percentage", "discount_value": "5", "weight": 0}],
            },
            "mystery_discounts",
        ),  # fmt: skip
        ({"coupon_type": "teleport"}, "coupon_type"),
    ],
)
def test_an_invalid_offer_is_refused_naming_the_field_and_nothing_is_saved(merchant, site, fields, field):
    with pytest.raises(ApplicationError) as refused:
        create(merchant, **fields)
    assert refused.value.code == "invalid_request" and field in refused.value.fields
    assert not Offer.objects.exists()


def test_finish_before_start_is_refused(merchant, site):
    now = timezone.now()
    with pytest.raises(ApplicationError) as refused:
        create(merchant, start_date=now, finish_date=now - timedelta(days=1))
    assert "finish_date" in refused.value.fields


def test_free_shipping_needs_no_discount_value(merchant, site):
    assert create(merchant, coupon_type="freeShipping", discount_value=None).discount_value is None


def test_a_vanity_code_is_one_shared_code_of_the_offer(merchant, site):
    offer = create(merchant, vanity_code="SUMMER20", usage_limit_type="multiple")
    coupon = Coupon.objects.get(code="SUMMER20")
    assert coupon.offer == offer and coupon.max_redemptions is None


@pytest.fixture
def run_jobs(django_capture_on_commit_callbacks, monkeypatch):
    """Background jobs run inline when the changing transaction commits, as the bulk cluster would run them."""
    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def coupon_writes(queries) -> list[str]:
    table = Coupon._meta.db_table
    return [
        q["sql"] for q in queries if q["sql"].startswith(("UPDATE", "INSERT", "DELETE")) and table in q["sql"]
    ]


def test_lowering_the_use_limit_applies_to_existing_codes_but_never_below_their_uses(offer, run_jobs):
    with run_jobs():
        services.offer_update(offer=offer, usage_limit_type="multiple", max_redemptions_per_code=5)
    coupon = services.coupons_create(offer=offer, count=1)[0]
    Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=3)
    with run_jobs():
        services.offer_update(offer=offer, max_redemptions_per_code=2)
    coupon.refresh_from_db()
    assert coupon.max_redemptions == 3
    assert Job.objects.filter(kind=Job.Kind.LIMITS, state=Job.State.SUCCEEDED).count() == 2


def test_changing_anything_but_the_use_limit_touches_no_code(offer, run_jobs):
    services.coupons_create(offer=offer, count=200)
    with CaptureQueriesContext(connection) as queries, run_jobs():
        services.offer_update(
            offer=offer, name="Renamed", discount_value=Decimal("7"), max_redemptions_per_code=1
        )
    assert coupon_writes(queries) == []
    assert not Job.objects.exists()


def test_a_new_use_limit_reaches_the_codes_through_a_job_not_the_request(offer, run_jobs, settings):
    settings.JOB_CHUNK_SIZE = 50  # several id ranges
    vanity = Coupon.objects.create(offer=offer, code="VANITY", max_redemptions=None)
    offer.vanity_code = "VANITY"
    Offer.objects.filter(pk=offer.pk).update(vanity_code="VANITY")
    coupons = services.coupons_create(offer=offer, count=120)
    with CaptureQueriesContext(connection) as queries:
        services.offer_update(offer=offer, usage_limit_type="multiple", max_redemptions_per_code=4)
    assert coupon_writes(queries) == []  # the request wrote the offer and a job, no code
    job = Job.objects.get(kind=Job.Kind.LIMITS)
    last_id = Coupon.objects.order_by("-id").first().id
    assert job.state == Job.State.QUEUED and job.chunks.count() == -(-last_id // 50)  # ranges of 50 ids

    jobs.job_run(job_id=job.pk)

    assert Job.objects.get(pk=job.pk).state == Job.State.SUCCEEDED
    assert set(
        Coupon.objects.filter(pk__in=[c.pk for c in coupons]).values_list("max_redemptions", flat=True)
    ) == {4}
    assert Coupon.objects.get(pk=vanity.pk).max_redemptions is None  # the vanity code keeps its own limit


def test_currency_is_stored_upper_case(merchant, site):
    assert create(merchant, currency="aud").currency == "AUD"
