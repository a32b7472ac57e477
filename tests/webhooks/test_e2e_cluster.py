"""End to end: a redemption committed in this process reaches local receivers through a real qcluster process."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, quote

import pytest
from django.conf import settings
from django.db import connection
from standardwebhooks import Webhook

from coupons.selectors import Owner
from tests import factories
from webhooks import doorbell
from webhooks.models import Delivery

from .conftest import redeem
from .factories import SubscriptionFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
READY = re.compile(rb"Q Cluster .* running")


def database_url() -> str:
    """The URL of the database this test runs on, as the cluster process must read it."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"postgres://{credentials}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def cluster(log_path: Path):
    """A `manage.py qcluster` process on this test's database (ORM broker), stopped and reaped afterwards."""
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "Q_SYNC")}
    env |= {
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": settings.SECRET_KEY,  # the broker's task payloads are signed with it
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "1",
        "Q_WORKERS": "1",
        "LOG_LEVEL": "INFO",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not READY.search(log_path.read_bytes()):
            assert process.poll() is None, f"qcluster exited:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"qcluster did not start:\n{log_path.read_text()[-3000:]}"
            time.sleep(0.1)
        yield process
    finally:
        # The cluster stops its own sentinel, workers, pusher and monitor; whatever of that process
        # group (all ours) is still there after the grace period is killed.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def wait_for(receiver, count: int, seconds: float) -> float:
    started = time.monotonic()
    while len(receiver.log) < count and time.monotonic() - started < seconds:
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_redemption_reaches_redcat_hub_and_uniqodo_receivers_through_the_cluster(receiver, tmp_path):
    # This process asked for a dispatcher in an earlier test: ask again for this test's cluster.
    doorbell.watch_forget()
    merchant = factories.MerchantFactory()
    site = factories.SiteFactory(merchant=merchant, name="My site", timezone="Australia/Sydney")
    offer = factories.OfferFactory(site=site, merchant=merchant, name="WH Test 4")
    distributor = factories.DistributorFactory()
    offer.distributors.add(distributor)
    member = factories.MemberFactory(
        merchant=offer.merchant, member_no="GATA0006417", attributes={"favourite": "flat white"}
    )
    coupon = factories.CouponFactory(
        offer=offer, member=member, code="2CC2F53103E9", session_id="d40cc0e7-session"
    )
    redcat = SubscriptionFactory(
        url=receiver.url_for("/redcat"), format="redcat", events=["coupon.redeemed"], merchant=merchant
    )
    hub = SubscriptionFactory(
        url=receiver.url_for("/hub"), format="hub_events", events=["coupon.redeemed"], merchant=merchant
    )
    uniqodo = SubscriptionFactory(
        url=receiver.url_for("/uniqodo"), format="uniqodo_callback", events=["coupon.redeemed"],
        distributor=distributor, params={"code": "code", "orderId": "orderId", "offerId": "offerId"},
    )  # fmt: skip
    for path in ("/redcat", "/hub", "/uniqodo"):
        receiver.expect_request(path, method="POST").respond_with_data("ok")

    with cluster(tmp_path / "qcluster.log") as process:
        redeemed_at = time.monotonic()
        redemption, _ = redeem(
            coupon.code, order_id="447518457", location="Shop 123", owner=Owner(distributor_id=distributor.id)
        )
        waited = wait_for(receiver, 3, seconds=15)
        assert process.poll() is None

    assert len(receiver.log) == 3, (tmp_path / "qcluster.log").read_text()[-3000:]
    assert waited < 5, f"the webhooks took {waited:.2f} s"
    requests = {request.path: request for request, _ in receiver.log}
    secrets = {"/redcat": redcat.secret, "/hub": hub.secret, "/uniqodo": uniqodo.secret}
    for path, request in requests.items():
        Webhook(secrets[path]).verify(request.get_data(as_text=True), dict(request.headers), json_parse=False)
    assert (
        len({request.headers["webhook-id"] for request in requests.values()}) == 1
    )  # one event, one message id

    # Seed 000: the Redcat redemption, key for key and type for type.
    redcat_body = requests["/redcat"].get_json()
    assert set(redcat_body) == {"HashExpiry", "MemberID", "LastUpdateDate", "CouponID", "CouponName", "MemberNo",
                                "MsgCreatedUTC", "Hash", "LastRedemptionDate", "ActiveStatus"}  # fmt: skip
    assert (redcat_body["MemberID"], redcat_body["CouponID"], redcat_body["CouponName"]) == (
        member.id,
        offer.id,
        "WH Test 4",
    )
    assert (redcat_body["MemberNo"], redcat_body["Hash"], redcat_body["ActiveStatus"]) == (
        "GATA0006417",
        "2CC2F53103E9",
        1,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", redcat_body["LastUpdateDate"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00", redcat_body["MsgCreatedUTC"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+1[01]:00", redcat_body["LastRedemptionDate"])

    # Seed 001: CouponRedemptionSuccess with the site, offer, coupon, session, profile and location.
    hub_body = requests["/hub"].get_json()
    assert hub_body["event"] == "CouponRedemptionSuccess"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", hub_body["timestamp"])
    assert {key: hub_body[key] for key in ("site_id", "site_name", "offer_id", "coupon_id", "offer_name", "coupon_code",
                                           "user_session_id", "user_profile_id", "coupon_location", "favourite")} == {
        "site_id": str(site.uuid), "site_name": "My site", "offer_id": str(offer.uuid), "coupon_id": str(coupon.uuid),
        "offer_name": "WH Test 4", "coupon_code": "2CC2F53103E9", "user_session_id": "d40cc0e7-session",
        "user_profile_id": str(member.profiles.get().uuid), "coupon_location": "Shop 123", "favourite": "flat white",
    }  # fmt: skip

    # Seed 002: the callback's chosen items under the chosen names, form-encoded.
    callback = requests["/uniqodo"]
    assert callback.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(callback.get_data(as_text=True)) == {
        "code": ["2CC2F53103E9"],
        "orderId": ["447518457"],
        "offerId": [str(offer.id)],
    }

    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert redemption.order_id == "447518457" and redeemed_at > 0
