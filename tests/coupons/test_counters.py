"""Rate-limit counters: every hit counted under concurrency, none dropped before its window ends."""

import time
from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from config.schedules import SCHEDULES
from coupons.counters import counter_hit, counters_purge, counters_read
from coupons.models import ThrottleCounter
from coupons.public.throttle import throttle_hit
from tests.concurrency import all_at_once

THREADS = 16


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_are_each_counted_once():
    ends = time.time() + 60
    counts = all_at_once(lambda i: counter_hit("race", window_ends=ends), THREADS)
    assert sorted(counts) == list(range(1, THREADS + 1))
    assert counters_read(["race", "other"]) == {"race": THREADS}


@pytest.mark.django_db(transaction=True)
def test_a_limit_lets_exactly_its_number_through_under_concurrency():
    request = RequestFactory().post("/c/x/", REMOTE_ADDR="203.0.113.7")
    waits = all_at_once(lambda i: throttle_hit("reveal", request, 10), THREADS)
    assert waits.count(None) == 10


def test_a_clients_count_survives_hundreds_of_other_clients(db):
    def hit(address: str):
        return throttle_hit("reveal", RequestFactory().post("/c/x/", REMOTE_ADDR=address), 3)

    for _ in range(3):
        assert hit("198.51.100.1") is None
    for n in range(1000):  # Django's database cache culls a third of its keys past 300
        hit(f"10.0.{n // 250}.{n % 250}")
    assert hit("198.51.100.1") is not None


def test_counters_are_purged_once_their_window_is_over(db):
    now = timezone.now()
    counter_hit("old", window_ends=(now - timedelta(minutes=5)).timestamp())
    counter_hit("live", window_ends=(now + timedelta(seconds=30)).timestamp())
    assert counters_purge(now=now) == 1
    assert list(ThrottleCounter.objects.values_list("key", flat=True)) == ["live"]
    assert SCHEDULES["coupons: purge throttle counters"][0] == "coupons.tasks.throttle_counters_purge_task"


def test_without_insert_returning_the_count_is_read_back(db, monkeypatch):
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("only an SQLite before 3.35 lacks INSERT ... RETURNING (the SQLite pass runs this)")
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    ends = time.time() + 60
    assert [counter_hit("old-sqlite", window_ends=ends) for _ in range(3)] == [1, 2, 3]
