"""The retry schedule: its delays, their jitter, the Retry-After floor and the header's two forms."""

from datetime import UTC, datetime, timedelta

import pytest

from webhooks.retries import MAX_ATTEMPTS, RETRY_AFTER_LIMIT, RETRY_DELAYS, retry_after_parse, retry_delay

NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


def test_the_schedule_is_immediately_5s_5min_30min_2h_5h_10h_10h_and_nine_attempts_in_all():
    assert [d.total_seconds() for d in RETRY_DELAYS] == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    assert MAX_ATTEMPTS == 9


@pytest.mark.parametrize("failed", range(1, len(RETRY_DELAYS) + 1))
def test_each_delay_is_jittered_within_twenty_percent(failed):
    planned = RETRY_DELAYS[failed - 1]
    drawn = {retry_delay(failed) for _ in range(50)}

    assert all(planned * 0.8 <= delay <= planned * 1.2 for delay in drawn)
    if planned:
        assert len(drawn) > 1  # really jittered, not a fixed offset


def test_no_retry_is_left_after_the_last_attempt():
    assert retry_delay(len(RETRY_DELAYS) + 1) is None
    assert retry_delay(0) is None


def test_retry_after_is_a_floor_and_never_shortens_the_schedule():
    assert retry_delay(1, retry_after=timedelta(seconds=30)) == timedelta(seconds=30)
    assert retry_delay(4, retry_after=timedelta(seconds=1)) >= timedelta(minutes=24)  # 30 min - 20 %


def test_an_absurd_retry_after_is_capped():
    assert retry_delay(1, retry_after=timedelta(days=365)) == RETRY_AFTER_LIMIT


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", timedelta(seconds=120)),
        (" 0 ", timedelta(0)),
        ("Tue, 04 Mar 2025 12:10:00 GMT", timedelta(minutes=10)),
        ("Tue, 04 Mar 2025 11:00:00 GMT", timedelta(0)),  # in the past: no wait
        ("99999999999999999999", RETRY_AFTER_LIMIT),
        ("soon", None),
        ("²", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header, expected):
    assert retry_after_parse(header, now=NOW) == expected
