"""The Uniqodo callback sends seed 002's redemption data items under the subscriber's names."""

from urllib.parse import parse_qsl

import pytest

from webhooks.formats import get_format
from webhooks.formats.base import COUPON_ISSUED, COUPON_REDEEMED
from webhooks.formats.uniqodo_callback import DATA_ITEMS, UniqodoCallback

from .samples import event, uniqodo_redemption

URL = "https://myexample.endpoint.com/"
EVERY_ITEM = {item: item for item in DATA_ITEMS}

# The seed's "Available Redemption Data" table, as the receiver reads it.
SEED_REDEMPTION_DATA = {
    "id": "126478",
    "offerId": "1256",
    "merchantId": "56",
    "distributorId": "23",
    "code": "XY23T4DF",
    "orderValue": "219.99",
    "orderId": "ABC123456",
    "currency": "USD",
    "redeemedAt": "2015-05-29T10:39:17+0000",
}


def test_it_is_registered_as_uniqodo_callback():
    assert isinstance(get_format("uniqodo_callback"), UniqodoCallback)


def test_it_renders_the_seed_redemption_data_as_a_form_post():
    rendered = UniqodoCallback().render(uniqodo_redemption(), url=URL, params=EVERY_ITEM)

    assert (rendered.method, rendered.url) == ("POST", URL)
    assert rendered.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert parse_qsl(rendered.body.decode(), keep_blank_values=True) == list(SEED_REDEMPTION_DATA.items())


def test_it_renders_the_seed_example_endpoint_call():
    message = uniqodo_redemption(code="45THD2L34K", order_id="447518457")

    rendered = UniqodoCallback().render(message, url=URL, params={"code": "code", "orderId": "orderId"})

    assert rendered.body == b"code=45THD2L34K&orderId=447518457"


def test_it_sends_the_items_under_the_subscribers_names_in_its_order():
    params = {"ref": "orderId", "voucher": "code", "when": "redeemedAt"}

    rendered = UniqodoCallback().render(uniqodo_redemption(), url=URL, params=params)

    assert rendered.body == b"ref=ABC123456&voucher=XY23T4DF&when=2015-05-29T10%3A39%3A17%2B0000"


def test_it_appends_the_items_to_the_query_string_of_a_get_and_keeps_the_urls_own_query():
    rendered = UniqodoCallback().render(
        uniqodo_redemption(),
        url="https://myexample.endpoint.com/callback?source=uniqodo",
        http_method="GET",
        params={"code": "code", "orderId": "orderId"},
    )

    assert rendered.method == "GET"
    assert (
        rendered.url
        == "https://myexample.endpoint.com/callback?source=uniqodo&code=XY23T4DF&orderId=ABC123456"
    )
    assert rendered.body == b""
    assert "Content-Type" not in rendered.headers


def test_it_sends_an_empty_string_for_a_missing_value():
    message = uniqodo_redemption(distributor_id=None)

    rendered = UniqodoCallback().render(
        message, url=URL, params={"distributor": "distributorId", "code": "code"}
    )

    assert rendered.body == b"distributor=&code=XY23T4DF"


def test_it_sends_the_offers_merchant_when_the_redemption_names_none():
    message = uniqodo_redemption()
    message.data["redemption"]["merchant_id"] = None

    rendered = UniqodoCallback().render(message, url=URL, params={"merchantId": "merchantId"})

    assert rendered.body == b"merchantId=56"


@pytest.mark.parametrize(
    ("params", "error"),
    [
        (None, "needs params"),
        ({}, "needs params"),
        ({"voucher": "coupon_code"}, "'coupon_code', which is not a data item"),
        ({"": "code"}, "non-empty strings"),
    ],
)
def test_it_refuses_a_subscription_without_a_usable_params_mapping(params, error):
    with pytest.raises(ValueError, match=error):
        UniqodoCallback().validate_subscription([COUPON_REDEEMED], "POST", params)


def test_it_refuses_a_method_other_than_get_or_post():
    with pytest.raises(ValueError, match="GET or POST"):
        UniqodoCallback().validate_subscription([COUPON_REDEEMED], "PUT", {"code": "code"})


def test_it_refuses_events_other_than_redemption():
    with pytest.raises(ValueError, match="cannot send coupon.issued"):
        UniqodoCallback().render(event(COUPON_ISSUED), url=URL, params={"code": "code"})


@pytest.mark.django_db
def test_a_stored_subscription_sends_its_parameters_in_the_order_configured():
    from tests.webhooks.factories import SubscriptionFactory
    from webhooks.models import Subscription

    params = {"voucher_code": "code", "ref": "orderId", "z": "redeemedAt"}
    SubscriptionFactory(format="uniqodo_callback", events=["coupon.redeemed"], params=params)
    stored = Subscription.objects.get()

    rendered = UniqodoCallback().render(uniqodo_redemption(), url=URL, params=stored.params)

    assert [name for name, _ in parse_qsl(rendered.body.decode())] == ["voucher_code", "ref", "z"]
