"""Import of 100,000 of a merchant's own codes over HTTP: gunicorn and a bulk cluster on PostgreSQL.

.venv/bin/python bench/import.py [--count 100000] [--inline 20000]

Starts its own PostgreSQL, migrates a fresh database, starts gunicorn and a bulk cluster
(Q_CLUSTER_NAME=bulk), then POSTs a CSV (code, member id, expiry) as text/csv to
/api/v1/offers/{id}/codes/import with an API key made for the bench. A file that large answers 202 with a
job, which validates every row and stores them all in one transaction; the clock runs from the upload to
the job's `succeeded`. A smaller file (--inline rows, the in-request limit) is imported in the request
(201) and timed too. For reference it times a raw COPY of the same codes into a bare table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bare_copy_seconds, offer_create, with_stack  # noqa: E402
from tests.stack import Stack, wait_until  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--inline", type=int, default=20_000, help="rows of the in-request import")
    args = parser.parse_args()
    return with_stack("import", lambda stack: run(stack, args))


def run(stack: Stack, args) -> int:
    from django.conf import settings

    if args.count <= settings.CSV_IMPORT_INLINE_MAX_ROWS:
        raise SystemExit(
            f"--count must exceed {settings.CSV_IMPORT_INLINE_MAX_ROWS} rows for the import to be a job"
        )
    offer, member_ids, token = world()
    _web, base_url = stack.web(WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    stack.cluster("bulk", Q_CLUSTER_NAME="bulk")
    url = f"{base_url}/api/v1/offers/{offer.id}/codes/import"

    small = csv_file("INLINE", args.inline, member_ids)
    started = time.perf_counter()
    status, body = upload(url, token, small)
    inline_seconds = time.perf_counter() - started
    assert status == 201 and body["imported"] == args.inline, (status, body)

    large = csv_file("BULK", args.count, member_ids)
    started = time.perf_counter()
    status, body = upload(url, token, large)
    accepted = time.perf_counter() - started
    assert status == 202, (status, body)
    samples = []

    def finished() -> bool:
        state, done = stack.sql("SELECT state, done FROM coupons_job WHERE id = %s", (body["id"],))[0]
        samples.append((time.perf_counter() - started, done, state))
        return state in ("succeeded", "failed")

    wait_until(finished, 300, "the import job", interval=0.2)
    seconds = time.perf_counter() - started
    assert samples[-1][2] == "succeeded", stack.sql(
        "SELECT error FROM coupons_job WHERE id = %s", (body["id"],)
    )
    stored = stack.scalar("SELECT count(*) FROM coupons_coupon WHERE offer_id = %s", (offer.id,))
    messages = stack.scalar("SELECT count(*) FROM webhooks_event WHERE type = 'coupon.created'")
    raw = bare_copy_seconds(
        stack, "code text, member_id text, expires_at text", large, "WITH (FORMAT csv, HEADER)"
    )

    print(f"\nimport of own codes over HTTP (gunicorn + bulk cluster, PostgreSQL), {len(member_ids)} members")
    print(
        f"  {args.inline:>9,} codes in the request  {inline_seconds:6.2f} s  ({len(small) / 1e6:.1f} MB, 201)"
    )
    print(f"  {args.count:>9,} codes by a job        {seconds:6.2f} s  ({len(large) / 1e6:.1f} MB, 202 after "
          f"{accepted:.2f} s, {args.count / seconds:,.0f} codes/s)")  # fmt: skip
    for elapsed, done, state in samples[:: max(1, len(samples) // 8)]:
        print(f"      {elapsed:6.2f} s  {done:>9,} / {args.count:,}  {state}")
    print(f"  stored {stored:,} codes; {messages:,} coupon.created messages")
    print("reference on this machine, same run:")
    print(f"  raw COPY of {args.count:,} rows of that file into a bare table: {raw:.2f} s")
    print(f"  load average now    {os.getloadavg()[0]:.2f}")
    return 0


def world():
    from coupons import services
    from coupons.models import Member, MemberProfile

    offer = offer_create(usage_limit_type="multiple", max_redemptions_per_code=3)
    members = Member.objects.bulk_create([Member() for _ in range(1000)])
    MemberProfile.objects.bulk_create(
        MemberProfile(member=m, merchant=offer.merchant, member_no=f"BENCH{i:07d}")
        for i, m in enumerate(members)
    )
    _key, token = services.api_key_create(
        merchant=offer.merchant, scopes=["offers", "read"], name="bench import"
    )
    return offer, [m.id for m in members], token


def csv_file(prefix: str, count: int, member_ids: list[int]) -> bytes:
    """code,member_id,expires_at: every tenth code for a member, every fifth with its own expiry."""
    lines = ["code,member_id,expires_at"]
    for i in range(count):
        member = str(member_ids[i % len(member_ids)]) if i % 10 == 0 else ""
        expiry = "2031-12-31" if i % 5 == 0 else ""
        lines.append(f"{prefix}-{i:08d},{member},{expiry}")
    return ("\r\n".join(lines) + "\r\n").encode()


def upload(url: str, token: str, data: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


if __name__ == "__main__":
    sys.exit(main())
