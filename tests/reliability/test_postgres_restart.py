"""PostgreSQL restarts under redemptions over HTTP: no half redemption, and gunicorn recovers by itself."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.stack import Stack, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CODES = 400
CLIENTS = 8
DEFINITIVE = {200, 201, 409}


@dataclass
class Outcomes:
    """What the clients saw: answers by status, and when each error happened."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: dict[int, int] = field(default_factory=dict)
    error_times: list[float] = field(default_factory=list)
    finished: dict[str, int] = field(default_factory=dict)

    def answer(self, code: str, status: int) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status in DEFINITIVE:
                self.finished[code] = status
            else:
                self.error_times.append(time.monotonic())

    def error(self) -> None:
        with self.lock:
            self.error_times.append(time.monotonic())


def client(base: str, token: str, codes: list[str], outcomes: Outcomes, deadline: float) -> None:
    """Redeem each code, retrying the same (code, order_id) until a definitive answer, like a real POS."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for code in codes:
        body = {"code": code, "order_id": f"order-{code}", "order_value": "50.00", "currency": "AUD"}
        while time.monotonic() < deadline:
            try:
                response = session.post(f"{base}/api/v1/codes/redeem", json=body, timeout=10)
            except requests.RequestException:
                outcomes.error()
                time.sleep(0.05)
                continue
            outcomes.answer(code, response.status_code)
            if response.status_code in DEFINITIVE:
                break
            time.sleep(0.05)


def worker_pids(web_pid: int) -> set[int]:
    children = Path(f"/proc/{web_pid}/task/{web_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def readyz(base: str) -> tuple[int, dict]:
    response = requests.get(f"{base}/readyz", timeout=10)
    return response.status_code, response.json()


def test_postgres_restart_mid_redemptions_leaves_no_half_redemption_and_needs_no_web_restart(
    make_stack,
) -> None:
    stack: Stack = make_stack(redis=True)
    world = stack.world(codes=CODES)
    web, base = stack.web(WEB_CONCURRENCY="3")
    workers_before = worker_pids(web.popen.pid)
    outcomes = Outcomes()
    deadline = time.monotonic() + 60
    shares = [world["codes"][i::CLIENTS] for i in range(CLIENTS)]
    threads = [
        threading.Thread(target=client, args=(base, world["api_key"], share, outcomes, deadline))
        for share in shares
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(outcomes.finished) >= CODES // 4, 30, "a quarter of the redemptions")

    stack.postgres.halt()
    # While the database is down the process is alive but not ready, and names what failed (no more: no staff).
    assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
    status, body = readyz(base)
    assert status == 503 and body["reason"] == "database", body
    time.sleep(1.0)
    stack.postgres.start()
    wait_until(lambda: readyz(base)[0] == 200, 30, "/readyz to be 200 again")
    back_at = time.monotonic()

    for thread in threads:
        thread.join(timeout=max(deadline - time.monotonic(), 0) + 15)
    assert not any(thread.is_alive() for thread in threads)

    # Every code got a definitive answer; retries of a committed redemption answered 200, never a second use.
    assert len(outcomes.finished) == CODES, outcomes.statuses
    assert set(outcomes.finished.values()) <= {200, 201}, outcomes.statuses
    assert outcomes.error_times, "the restart should have failed some requests"
    # While it was down the API said so with a 503 and the error body, never a 500.
    assert 500 not in outcomes.statuses, outcomes.statuses
    # Persistent connections broken by the restart were noticed and replaced, not served to a client.
    late = [t for t in outcomes.error_times if t > back_at + 0.5]
    assert late == [], f"{len(late)} errors after the database was back: {outcomes.statuses}"
    assert web.alive and worker_pids(web.popen.pid) == workers_before

    # The database agrees: one live redemption per code, counters equal to rows, one event per redemption.
    mismatched = stack.sql(
        "SELECT c.code, c.times_redeemed, count(r.id) FROM coupons_coupon c "
        "LEFT JOIN coupons_redemption r ON r.coupon_id = c.id AND r.rolled_back_at IS NULL "
        "GROUP BY c.id HAVING c.times_redeemed <> count(r.id) OR count(r.id) <> 1"
    )
    assert mismatched == []
    redemptions = stack.scalar("SELECT count(*) FROM coupons_redemption")
    events = stack.scalar("SELECT count(*) FROM webhooks_event WHERE type = 'coupon.redeemed'")
    assert redemptions == events == CODES
    print(f"answers {outcomes.statuses}, {len(outcomes.error_times)} errors during the restart")
