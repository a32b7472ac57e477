"""factory-boy builders for the domain objects."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from coupons.models import (
    Coupon,
    Distributor,
    Location,
    Member,
    MemberProfile,
    Merchant,
    Offer,
    Redemption,
    Site,
)


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant

    name = factory.Sequence(lambda n: f"Merchant {n}")


class DistributorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Distributor

    name = factory.Sequence(lambda n: f"Distributor {n}")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site

    name = "My site"
    merchant = factory.SubFactory(MerchantFactory)
    timezone = "Australia/Sydney"


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location

    name = factory.Sequence(lambda n: f"Shop {n}")
    site = factory.SubFactory(SiteFactory)


class MemberFactory(factory.django.DjangoModelFactory):
    """A member, with `merchant`'s profile of it when a merchant (or `distributor`) is given."""

    class Meta:
        model = Member

    merchant = None
    distributor = None
    member_no = factory.Sequence(lambda n: f"GATA{n:07d}")
    external_id = factory.Sequence(lambda n: f"cust-{n}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    attributes = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class, *args, merchant=None, distributor=None, **kwargs):
        told = {name: kwargs.pop(name) for name in ("member_no", "external_id", "email", "attributes")}
        member = super()._create(model_class, *args, **kwargs)
        if merchant is not None or distributor is not None:
            MemberProfile.objects.create(member=member, merchant=merchant, distributor=distributor, **told)
        return member


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    name = factory.Sequence(lambda n: f"Offer {n}")
    site = factory.SubFactory(SiteFactory)
    merchant = factory.SelfAttribute("site.merchant")
    coupon_type = "fixedAmount"
    discount_value = Decimal("10.00")
    currency = "AUD"
    start_date = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    finish_date = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Coupon

    offer = factory.SubFactory(OfferFactory)
    code = factory.Sequence(lambda n: f"CODE{n:08d}")
    max_redemptions = factory.LazyAttribute(lambda c: c.offer.code_limit_per_coupon)
    issued_at = factory.LazyFunction(timezone.now)


class RedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Redemption

    coupon = factory.SubFactory(CouponFactory)
    order_id = factory.Sequence(lambda n: f"ORDER-{n}")
    order_value = Decimal("100.00")
    currency = "AUD"
    merchant = factory.SelfAttribute("coupon.offer.merchant")
