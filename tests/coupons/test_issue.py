"""Create-or-retrieve: one code per identifier or browser session."""

import pytest

from coupons import services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Member
from webhooks.models import Event


def test_the_first_issue_creates_and_the_second_retrieves_the_same_code(offer):
    first, created = services.coupon_issue(offer=offer, identifier="cust-42")
    again, created_again = services.coupon_issue(offer=offer, identifier="cust-42")
    assert created and not created_again and first.pk == again.pk
    assert Event.objects.filter(type="coupon.issued").count() == 1


def test_the_same_identifier_gets_another_code_on_another_offer(offer):
    other = services.offer_create(merchant=offer.merchant, name="Other", coupon_type="percentage",
                                  discount_value="10")  # fmt: skip
    a, _ = services.coupon_issue(offer=offer, identifier="cust-42")
    b, _ = services.coupon_issue(offer=other, identifier="cust-42")
    assert a.code != b.code


def test_issue_to_an_email_finds_or_creates_the_member_with_its_attributes(offer):
    coupon, _ = services.coupon_issue(
        offer=offer, identifier="x", email="jo@example.com", attributes={"tier": "gold"}
    )
    profile = coupon.member.profiles.get(merchant=offer.merchant)
    assert profile.email == "jo@example.com" and profile.attributes == {"tier": "gold"}
    services.coupon_issue(offer=offer, identifier="y", email="JO@example.com")
    assert Member.objects.count() == 1


def test_issue_to_an_unknown_member_is_refused_and_creates_nothing(offer):
    with pytest.raises(ApplicationError) as refused:
        services.coupon_issue(offer=offer, identifier="x", member_id=424242)
    assert refused.value.fields == {"member_id": ["unknown"]}
    assert not Coupon.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize("identifier", [None, "", "   ", "x" * 201, "a\x00b", 12])
def test_a_missing_or_malformed_identifier_is_refused(offer, identifier):
    with pytest.raises(ApplicationError) as refused:
        services.coupon_issue(offer=offer, identifier=identifier)
    assert refused.value.code == "invalid_request"


@pytest.mark.parametrize("session_id", ["s" * 101, "", 7])
def test_a_malformed_session_id_is_refused(offer, session_id):
    with pytest.raises(ApplicationError) as refused:
        services.coupon_issue(offer=offer, session_id=session_id)
    assert refused.value.fields == {"session_id": ["invalid"]}


def test_an_inactive_offer_issues_nothing(offer):
    offer.active_status = 0
    offer.save()
    with pytest.raises(ApplicationError) as refused:
        services.coupon_issue(offer=offer, identifier="x")
    assert refused.value.code == "offer_inactive"


def test_a_pool_offer_hands_out_premade_codes_then_is_sold_out(offer):
    offer.issue_from_pool = True
    offer.save()
    premade = {c.code for c in services.coupons_create(offer=offer, count=2)}
    handed = {services.coupon_issue(offer=offer, identifier=f"id-{i}")[0].code for i in range(2)}
    assert handed == premade
    with pytest.raises(ApplicationError) as refused:
        services.coupon_issue(offer=offer, identifier="id-3")
    assert refused.value.code == "sold_out"


def test_a_browser_session_keys_the_code_like_an_identifier(offer):
    a, _ = services.coupon_issue(offer=offer, session_id="sess-1")
    b, created = services.coupon_issue(offer=offer, session_id="sess-1")
    assert a.pk == b.pk and not created
    assert Event.objects.get(type="coupon.issued").data["session_id"] == "sess-1"


def test_viewing_records_the_first_view_once(offer):
    coupon, _ = services.coupon_issue(offer=offer, session_id="s")
    services.coupon_view(coupon=coupon, session_id="s")
    first_seen = Coupon.objects.get(pk=coupon.pk).viewed_at
    services.coupon_view(coupon=coupon, session_id="s")
    assert Coupon.objects.get(pk=coupon.pk).viewed_at == first_seen
    assert Event.objects.filter(type="coupon.viewed").count() == 1
