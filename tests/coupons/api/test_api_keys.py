"""API keys over the API (scope `keys`): create once-shown keys within the acting key's powers, list, revoke, expire."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from coupons.models import ApiKey
from tests import factories
from tests.coupons.api.conftest import assert_error, client_for

KEYS = "/api/v1/keys/"


@pytest.fixture
def manager(make_client, merchant):
    """The merchant's key that manages keys, with every scope."""
    return make_client(merchant=merchant)


def key_of(client) -> ApiKey:
    return ApiKey.objects.get(prefix=client.token[:12])


def test_a_created_key_is_shown_once_works_at_once_and_is_listed_without_its_secret(manager, merchant, offer):
    answer = manager.post(KEYS, {"name": "Till 7", "scopes": ["read", "redeem"]}, format="json")
    assert answer.status_code == 201, answer.content
    created = answer.json()
    token = created.pop("key")
    assert token.startswith("ck_") and created["prefix"] == token[:12]
    assert created["scopes"] == ["redeem", "read"] and created["merchant_id"] == merchant.id
    assert created["expires_at"] is None and created["revoked_at"] is None

    assert client_for(token).get(f"/api/v1/offers/{offer.id}/").status_code == 200
    listed = manager.get(KEYS).json()["results"]
    assert [k["id"] for k in listed] == [created["id"], key_of(manager).id]
    new = listed[0]
    assert set(new) == {"id", "name", "prefix", "scopes", "merchant_id", "distributor_id", "created_at",
                        "last_used_at", "expires_at", "revoked_at"}  # fmt: skip
    assert new["last_used_at"] is not None  # the use above
    assert token not in manager.get(KEYS).content.decode()
    assert token not in manager.get(f"{KEYS}{created['id']}/").content.decode()


def test_a_key_gives_only_scopes_it_holds_itself(make_client, merchant):
    limited = make_client(merchant=merchant, scopes=["keys", "read"])
    refused = assert_error(
        limited.post(KEYS, {"scopes": ["read", "redeem"]}, format="json"), 403, "forbidden"
    )
    assert refused["fields"] == {"scopes": ["redeem"]}
    assert ApiKey.objects.count() == 1
    assert limited.post(KEYS, {"scopes": ["read"]}, format="json").status_code == 201
    made = limited.post(KEYS, {"scopes": ["keys"]}, format="json").json()
    assert made["scopes"] == ["keys"]


def test_a_key_without_the_keys_scope_can_neither_list_nor_create_nor_revoke(make_client, merchant, manager):
    reader = make_client(merchant=merchant, scopes=["read", "offers", "webhooks"])
    assert_error(reader.get(KEYS), 403, "forbidden")
    assert_error(reader.post(KEYS, {"scopes": ["read"]}, format="json"), 403, "forbidden")
    assert_error(reader.post(f"{KEYS}{key_of(manager).id}/revoke"), 403, "forbidden")
    assert key_of(manager).revoked_at is None


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": ["everything"]}, "scopes"),
        ({"scopes": "read"}, "scopes"),
        ({"scopes": ["read"], "expires_at": "yesterday"}, "expires_at"),
        ({"scopes": ["read"], "expires_at": "2001-01-01T00:00:00+00:00"}, "expires_at"),
        ({"scopes": ["read"], "expires_at": "9999-12-31T23:59:59-05:00"}, "expires_at"),
        ({"scopes": ["read"], "name": "x" * 201}, "name"),
    ],
)
def test_bad_input_is_refused_naming_the_field(manager, body, field):
    error = assert_error(manager.post(KEYS, body, format="json"), 400, "invalid_request")
    assert field in error["fields"]
    assert ApiKey.objects.count() == 1


def test_another_owners_keys_are_not_found_and_not_listed(manager, make_client, merchant):
    other = make_client(merchant=factories.MerchantFactory())
    own_distributor = make_client(distributor=factories.DistributorFactory())
    both = make_client(merchant=merchant, distributor=factories.DistributorFactory())
    for stranger in (other, own_distributor, both):
        assert_error(manager.get(f"{KEYS}{key_of(stranger).id}/"), 404, "not_found")
        assert_error(manager.post(f"{KEYS}{key_of(stranger).id}/revoke"), 404, "not_found")
        assert key_of(stranger).revoked_at is None
    assert [k["id"] for k in manager.get(KEYS).json()["results"]] == [key_of(manager).id]
    assert [k["id"] for k in other.get(KEYS).json()["results"]] == [key_of(other).id]


def test_a_revoked_key_is_refused_at_once_by_the_process_that_revoked_it(manager, settings):
    settings.API_KEY_CACHE_SECONDS = 60
    created = manager.post(KEYS, {"scopes": ["read"]}, format="json").json()
    till = client_for(created["key"])
    assert till.get("/api/v1/offers/").status_code == 200  # now remembered for a minute

    revoked = manager.post(f"{KEYS}{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_error(till.get("/api/v1/offers/"), 401, "unauthenticated")
    assert manager.get(f"{KEYS}{created['id']}/").json()["revoked_at"] == revoked.json()["revoked_at"]


def test_a_revocation_reaches_a_process_that_remembers_the_key_within_the_cache_time(manager, settings):
    settings.API_KEY_CACHE_SECONDS = 0.3
    created = manager.post(KEYS, {"scopes": ["read"]}, format="json").json()
    till = client_for(created["key"])
    assert till.get("/api/v1/offers/").status_code == 200
    # Another web process: it remembers the key, and this one's revocation cannot reach its memory.
    ApiKey.objects.filter(pk=created["id"]).update(revoked_at=timezone.now())
    time.sleep(0.35)
    assert_error(till.get("/api/v1/offers/"), 401, "unauthenticated")


def test_revoking_twice_changes_nothing_and_audits_once(manager):
    created = manager.post(KEYS, {"scopes": ["read"]}, format="json").json()
    first = manager.post(f"{KEYS}{created['id']}/revoke").json()
    second = manager.post(f"{KEYS}{created['id']}/revoke")
    assert second.status_code == 200 and second.json()["revoked_at"] == first["revoked_at"]
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1


def test_a_key_revokes_only_keys_within_its_own_scopes(make_client, merchant, manager):
    limited = make_client(merchant=merchant, scopes=["keys", "read"])
    assert_error(limited.post(f"{KEYS}{key_of(manager).id}/revoke"), 403, "forbidden")
    assert key_of(manager).revoked_at is None
    reader = make_client(merchant=merchant, scopes=["read"])
    assert limited.post(f"{KEYS}{key_of(reader).id}/revoke").status_code == 200
    assert limited.post(f"{KEYS}{key_of(limited).id}/revoke").status_code == 200  # itself
    assert_error(limited.get(KEYS), 401, "unauthenticated")


def test_an_expired_key_answers_401_even_while_remembered(manager, settings):
    settings.API_KEY_CACHE_SECONDS = 60
    soon = timezone.now() + timedelta(seconds=0.5)
    created = manager.post(KEYS, {"scopes": ["read"], "expires_at": soon.isoformat()}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["expires_at"] is not None
    till = client_for(created.json()["key"])
    assert till.get("/api/v1/offers/").status_code == 200
    time.sleep(0.6)
    assert_error(till.get("/api/v1/offers/"), 401, "unauthenticated")
    assert_error(client_for(created.json()["key"]).get("/api/v1/offers/"), 401, "unauthenticated")


def test_a_key_made_by_an_expiring_key_ends_with_it_at_the_latest(manager):
    ends = timezone.now() + timedelta(days=7)
    temporary = manager.post(
        KEYS, {"scopes": ["keys", "read"], "expires_at": ends.isoformat()}, format="json"
    )
    temp = client_for(temporary.json()["key"])
    inherited = temp.post(KEYS, {"scopes": ["read"]}, format="json").json()
    assert (
        ApiKey.objects.get(pk=inherited["id"]).expires_at
        == ApiKey.objects.get(pk=temporary.json()["id"]).expires_at
    )
    later = (ends + timedelta(days=1)).isoformat()
    refused = assert_error(
        temp.post(KEYS, {"scopes": ["read"], "expires_at": later}, format="json"), 403, "forbidden"
    )
    assert "expires_at" in refused["fields"]
    sooner = (ends - timedelta(days=1)).isoformat()
    assert temp.post(KEYS, {"scopes": ["read"], "expires_at": sooner}, format="json").status_code == 201


def test_creation_and_revocation_are_audited_with_the_acting_key_and_never_the_secret(manager):
    created = manager.post(KEYS, {"name": "Till 8", "scopes": ["read"]}, format="json").json()
    manager.post(f"{KEYS}{created['id']}/revoke")
    entries = list(AuditEntry.objects.order_by("id"))
    assert [(e.action, e.object_id, e.api_key_id) for e in entries] == [
        ("api_key.create", str(created["id"]), key_of(manager).id),
        ("api_key.revoke", str(created["id"]), key_of(manager).id),
    ]
    assert entries[0].changes == {"name": "Till 8", "scopes": ["read"]}
    assert created["key"] not in str([e.changes for e in entries] + [e.object_repr for e in entries])


def test_an_idempotent_replay_of_a_creation_never_shows_the_key_again(manager):
    first = manager.post(KEYS, {"scopes": ["read"]}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    replay = manager.post(KEYS, {"scopes": ["read"]}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    assert replay["Idempotent-Replayed"] == "true"
    assert "key" in first.json() and "key" not in replay.json()
    assert replay.json()["id"] == first.json()["id"]
    assert ApiKey.objects.count() == 2


def test_a_dry_run_creates_and_revokes_nothing(manager):
    created = manager.post(KEYS, {"scopes": ["read"]}, format="json", HTTP_X_DRY_RUN="true")
    assert created.status_code == 201 and ApiKey.objects.count() == 1
    revoked = manager.post(f"{KEYS}{key_of(manager).id}/revoke", HTTP_X_DRY_RUN="true")
    assert revoked.status_code == 200 and key_of(manager).revoked_at is None
    assert manager.get(KEYS).status_code == 200
    assert not AuditEntry.objects.exists()


def test_the_admin_creates_a_key_with_an_expiry_and_refuses_one_already_past(admin_client, merchant):
    def add(expires_at):
        return admin_client.post(
            "/admin/coupons/apikey/add/",
            {"name": "Temp", "merchant": merchant.id, "scopes": ["read"],
             "expires_at_0": expires_at.strftime("%Y-%m-%d"), "expires_at_1": expires_at.strftime("%H:%M:%S")},
        )  # fmt: skip

    refused = add(timezone.now() - timedelta(days=1))
    assert b"expiry is in the future" in refused.content and not ApiKey.objects.exists()
    created = add(timezone.now() + timedelta(days=2))
    assert created.context["token"]
    assert ApiKey.objects.get().expires_at > timezone.now() + timedelta(days=1)
