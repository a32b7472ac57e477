"""Shared fixtures: a merchant's world (site, offers, members), API clients and capture of on-commit hooks."""

import pytest
from django.db import connection

from tests import factories


@pytest.fixture
def merchant(db):
    return factories.MerchantFactory()


@pytest.fixture
def site(merchant):
    return factories.SiteFactory(merchant=merchant)


@pytest.fixture
def offer(site):
    return factories.OfferFactory(site=site, merchant=site.merchant)


@pytest.fixture
def member(merchant):
    """A member the merchant told the platform about."""
    return factories.MemberFactory(merchant=merchant)


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hashers are slow by design; tests log users in often and need no protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
