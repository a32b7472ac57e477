"""SSRF: URLs that reach private, loopback, link-local or reserved addresses are refused at save and at send."""

import socket

import pytest
from django.core.exceptions import ValidationError

from coupons.errors import ApplicationError
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.services import subscription_create
from webhooks.transport import deliveries_send_due
from webhooks.urls_guard import url_refusal

from .conftest import redeem
from .factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake_dns(monkeypatch):
    """Make chosen host names resolve to chosen addresses; every other name resolves as usual."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host in names:
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (ip, port or 80),
                )
                for ip in names[host]
            ]
        return real(host, port, family, type, proto, flags)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


@pytest.fixture
def private_off(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    return settings


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[::ffff:169.254.169.254]/hook", "link-local"),
        ("http://0.0.0.0:8000/hook", "not a unicast address"),
        ("http://224.0.0.1/hook", "not a unicast address"),
        ("http://100.64.0.1/hook", "reserved"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://192.0.2.10/hook", "reserved"),
    ],
)
def test_link_local_and_reserved_addresses_are_refused_even_when_private_urls_are_allowed(
    url, reason, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True

    assert reason in url_refusal(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1 is a private network address"),
        ("http://192.168.1.20:8080/hook", "private network"),
        ("http://localhost:8000/hook", "loopback"),
        ("http://127.0.0.1/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
    ],
)
def test_private_and_loopback_addresses_are_refused_unless_the_setting_allows_them(url, reason, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    refusal = url_refusal(url)
    assert reason in refusal and "WEBHOOKS_ALLOW_PRIVATE_URLS" in refusal

    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    assert url_refusal(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "Only http:// and https://"),
        ("file:///etc/passwd", "Only http:// and https://"),
        ("javascript:alert(1)", "Only http:// and https://"),
        ("http:///no-host", "no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com/a b", "spaces or control characters"),
        ("http://example.com/\r\nInjected: 1", "spaces or control characters"),
    ],
)
def test_urls_that_are_not_plain_http_are_refused(url, reason):
    assert reason in url_refusal(url)


def test_a_host_name_that_resolves_to_a_private_address_is_refused(fake_dns, private_off):
    fake_dns["internal.example.test"] = ["10.1.2.3"]

    assert url_refusal("https://internal.example.test/hook") == (
        "Webhooks cannot be sent to internal.example.test: 10.1.2.3 is a private network address "
        "(allowed only with WEBHOOKS_ALLOW_PRIVATE_URLS)."
    )


def test_a_host_name_with_any_private_address_among_public_ones_is_refused(fake_dns, private_off):
    fake_dns["mixed.example.test"] = ["93.184.216.34", "127.0.0.1"]

    assert "127.0.0.1 is a loopback address" in url_refusal("https://mixed.example.test/")


def test_a_public_host_name_is_accepted(fake_dns, private_off):
    fake_dns["hooks.example.test"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    assert url_refusal("https://hooks.example.test/hook") is None


def test_a_host_name_that_does_not_resolve_is_refused():
    assert "could not be resolved" in url_refusal("https://no-such-host.invalid/hook")


def test_the_service_refuses_an_unsafe_url_with_the_reason_in_the_error_body(merchant):
    with pytest.raises(ApplicationError) as refused:
        subscription_create(
            merchant=merchant, url="http://169.254.169.254/", format="standard", events=["coupon.redeemed"]
        )

    assert refused.value.code == "invalid_request"
    assert "link-local" in refused.value.fields["url"][0]
    assert not Subscription.objects.exists()


def test_the_models_clean_refuses_an_unsafe_url(private_off):
    subscription = Subscription(url="http://10.0.0.1/hook", format="standard", events=["coupon.redeemed"])

    with pytest.raises(ValidationError) as refused:
        subscription.full_clean()

    assert "private network" in refused.value.message_dict["url"][0]


# --- at send time ----------------------------------------------------------------------------------


def test_a_link_local_url_that_slipped_into_the_database_is_refused_at_send(subscription, coupon):
    Subscription.objects.filter(pk=subscription.pk).update(url="http://169.254.169.254/latest/meta-data/")
    redeem(coupon.code)

    deliveries_send_due()

    attempt = Attempt.objects.order_by("id").first()
    assert attempt.error.startswith("Refused: 169.254.169.254 is a link-local address")
    assert attempt.status_code is None


def test_a_name_that_rebinds_to_the_metadata_address_after_saving_is_refused_at_send(
    fake_dns, receiver, coupon
):
    fake_dns["rebind.example.test"] = ["93.184.216.34"]
    subscription = subscription_create(
        url=f"http://rebind.example.test:{receiver.port}/hook", format="standard", events=["coupon.redeemed"]
    )
    fake_dns["rebind.example.test"] = ["169.254.169.254"]
    redeem(coupon.code)

    deliveries_send_due()

    assert Delivery.objects.get(subscription=subscription).last_error.startswith(
        "Refused: 169.254.169.254 is a link-local address"
    )
    assert receiver.log == []


def test_without_the_setting_a_name_rebinding_to_a_private_address_is_refused_by_the_hardened_filter(
    fake_dns, receiver, coupon, private_off
):
    fake_dns["rebind.example.test"] = ["93.184.216.34"]
    subscription = subscription_create(
        url=f"http://rebind.example.test:{receiver.port}/hook", format="standard", events=["coupon.redeemed"]
    )
    fake_dns["rebind.example.test"] = ["127.0.0.1"]  # where the receiver really listens
    redeem(coupon.code)

    deliveries_send_due()

    assert (
        Delivery.objects.get(subscription=subscription).last_error
        == "Refused: 127.0.0.1 is a loopback address."
    )
    assert receiver.log == []


def test_the_connection_goes_to_the_checked_address_with_the_original_host_header(fake_dns, receiver, coupon):
    fake_dns["receiver.example.test"] = ["127.0.0.1"]
    SubscriptionFactory(url=f"http://receiver.example.test:{receiver.port}/hook")
    receiver.expect_request("/hook").respond_with_data("ok")
    redeem(coupon.code)

    deliveries_send_due()

    ((request, _),) = receiver.log
    assert request.headers["Host"] == f"receiver.example.test:{receiver.port}"
    assert Delivery.objects.get().status == "succeeded"


def test_a_single_label_container_host_name_is_fine_where_private_urls_are_allowed(fake_dns, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    fake_dns["webhook_receiver"] = ["172.18.0.5"]

    assert url_refusal("http://webhook_receiver:9000/hook") is None
