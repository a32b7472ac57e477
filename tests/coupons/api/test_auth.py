"""API keys: Bearer authentication, scopes, revocation, the create_api_key command and the admin's create-once page."""

import logging
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from coupons.api.auth import api_key_hash
from coupons.models import ApiKey, Distributor, Merchant
from tests.coupons.api.conftest import assert_error, client_for


def test_a_request_without_a_key_is_unauthenticated(db):
    response = client_for(None).get("/api/v1/offers/")
    assert_error(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nope", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 300])
def test_a_request_with_a_wrong_key_or_scheme_is_unauthenticated(db, header):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get("/api/v1/offers/"), 401, "unauthenticated")


def test_a_revoked_key_is_unauthenticated(api):
    ApiKey.objects.update(revoked_at=timezone.now())
    assert_error(api.get("/api/v1/offers/"), 401, "unauthenticated")


def test_a_key_with_the_right_prefix_but_another_secret_is_unauthenticated(api):
    forged = api.token[:12] + "A" * (len(api.token) - 12)
    assert_error(client_for(forged).get("/api/v1/offers/"), 401, "unauthenticated")


def test_a_key_without_the_scope_is_forbidden(make_client, merchant, offer):
    reader = make_client(merchant=merchant, scopes=["read"])
    assert reader.get("/api/v1/offers/").status_code == 200
    assert_error(reader.post("/api/v1/offers/", {"name": "x"}, format="json"), 403, "forbidden")
    assert_error(reader.post("/api/v1/codes/redeem", {"code": "X"}, format="json"), 403, "forbidden")
    redeemer = make_client(merchant=merchant, scopes=["redeem"])
    assert_error(redeemer.get(f"/api/v1/offers/{offer.id}/"), 403, "forbidden")


def test_using_a_key_records_when_it_was_last_used(api):
    assert ApiKey.objects.get().last_used_at is None
    api.get("/api/v1/offers/")
    assert ApiKey.objects.get().last_used_at is not None


def test_a_key_never_reaches_the_logs(api, caplog):
    caplog.set_level(logging.DEBUG)
    api.get("/api/v1/offers/")
    api.get("/api/v1/no-such-endpoint/")
    api.post("/api/v1/codes/redeem", "{broken", content_type="application/json")
    client_for(api.token + "tampered").get("/api/v1/offers/")
    assert caplog.records
    assert api.token not in caplog.text
    assert api.token[12:] not in caplog.text


def test_the_command_creates_the_owners_and_prints_the_key_alone_on_its_last_line(db):
    out = StringIO()
    call_command(
        "create_api_key", "--merchant", "Cafe", "--distributor", "Pub", "--scopes", "read,redeem", stdout=out
    )
    token = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get()
    assert key.hashed_key == api_key_hash(token) and token not in (key.hashed_key, key.prefix)
    assert key.scopes == ["redeem", "read"]
    assert key.merchant == Merchant.objects.get(name="Cafe")
    assert key.distributor == Distributor.objects.get(name="Pub")
    assert client_for(token).get("/api/v1/offers/").status_code == 200


def test_the_command_reuses_an_existing_merchant_and_gives_every_scope_by_default(merchant):
    out = StringIO()
    call_command("create_api_key", "--merchant", merchant.name, stdout=out)
    assert Merchant.objects.count() == 1
    assert ApiKey.objects.get().scopes == ApiKey.SCOPES


@pytest.mark.parametrize("args", [[], ["--merchant", "Cafe", "--scopes", "read,launch_rockets"]])
def test_the_command_refuses_a_key_without_owner_or_with_unknown_scopes(db, args):
    with pytest.raises(CommandError):
        call_command("create_api_key", *args, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_the_admin_shows_a_new_key_once_and_stores_only_its_hash(admin_client, merchant):
    response = admin_client.post(
        "/admin/coupons/apikey/add/",
        {"name": "POS", "merchant": merchant.id, "scopes": ["read", "redeem"]},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    token = response.context["token"]
    assert token.encode() in response.content
    key = ApiKey.objects.get()
    assert key.hashed_key == api_key_hash(token) and key.scopes == ["redeem", "read"]
    change_page = admin_client.get(f"/admin/coupons/apikey/{key.id}/change/")
    assert token.encode() not in change_page.content
    assert client_for(token).get("/api/v1/offers/").status_code == 200


def test_the_admin_refuses_a_key_without_owner(admin_client):
    response = admin_client.post("/admin/coupons/apikey/add/", {"name": "x", "scopes": ["read"]})
    assert response.status_code == 200 and not ApiKey.objects.exists()
    assert b"belongs to a merchant or a distributor" in response.content
