"""Redemption latency as the coupon table grows (10k, 1M, 10M codes): it stays flat, index look-ups only.

.venv/bin/python bench/scale.py [--sizes 10000,1000000,10000000] [--samples 300]
Codes are added straight in SQL (INSERT ... SELECT generate_series) to one offer of a merchant;
at each size, codes drawn at random from the whole table are redeemed through the service
(coupon_redeem in a Django process on the same PostgreSQL) and their latency measured, and the
plan of the code look-up is printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import start_postgres  # noqa: E402
from tests.stack import Stack, template_create  # noqa: E402

FLAT_FACTOR = 2.0  # p50 at the largest size within this factor of the smallest counts as flat

# md5 of the row number: random-looking 16-character codes spread over the whole index, as real
# codes are (sequential codes would all land on the index's right edge).
FILL = """
INSERT INTO coupons_coupon (uuid, code, offer_id, status, discount_value, times_redeemed, max_redemptions,
                            issued_at, created_at, updated_at)
SELECT gen_random_uuid(), upper(substr(md5('scale-' || n::text), 1, 16)), %s, 'active', NULL, 0, 1,
       now(), now(), now()
FROM generate_series(%s::bigint, %s::bigint) AS n
"""

MEASURE = """
import random, time
from coupons import services
from coupons.models import Coupon
from django.db import connection

order = services.order_parse(order_value="50.00", currency="AUD")
with connection.cursor() as cursor:
    # Random rows from the whole table (not the hot end just inserted).
    cursor.execute("SELECT code FROM coupons_coupon TABLESAMPLE SYSTEM (%s) WHERE times_redeemed = 0 LIMIT %s",
                   [percent, samples])
    codes = [row[0] for row in cursor.fetchall()]
random.shuffle(codes)
services.coupon_redeem(code=codes.pop(), order_id="warm-up", order=order)
timings = []
for index, code in enumerate(codes):
    started = time.perf_counter()
    services.coupon_redeem(code=code, order_id=f"scale-{size}-{index}", order=order)
    timings.append(time.perf_counter() - started)
# The selectors' look-up of a code (coupon_get_by_code), timed alone and explained.
def lookup(code):
    return Coupon.objects.select_related("offer", "offer__site", "member").filter(code=code).order_by("id")[:1]
lookups = []
for code in codes[:100]:
    started = time.perf_counter()
    list(lookup(code))
    lookups.append(time.perf_counter() - started)
plan = lookup(codes[0]).explain(analyze=True)
timings.sort(); lookups.sort()
result = {"n": len(timings), "p50": timings[len(timings) // 2], "p99": timings[int(len(timings) * 0.99)],
          "lookup_p50": lookups[len(lookups) // 2], "plan": plan}
"""


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,1000000,10000000")
    parser.add_argument("--samples", type=int, default=300)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        postgres = start_postgres(Path(tmp))
        try:
            template_create(postgres)
            stack = Stack(Path(tmp), postgres, None)
            offer_id = stack.world(codes=0)["offer_id"]
            filled = 0
            for size in sizes:
                started = time.perf_counter()
                # In steps of a million rows, one transaction each, so progress shows.
                for first in range(filled + 1, size + 1, 1_000_000):
                    last = min(first + 999_999, size)
                    stack.sql(FILL, (offer_id, first, last))
                    print(
                        f"  {last:>12,} codes in the table ({time.perf_counter() - started:.0f} s)",
                        flush=True,
                    )
                filled = size
                stack.sql("VACUUM ANALYZE coupons_coupon")
                percent = min(100.0, max(0.01, options.samples * 400 / size))
                figures = stack.django(MEASURE, size=size, samples=options.samples + 1, percent=percent)
                figures["size"] = size
                rows.append(figures)
                print(
                    f"{size:>12,} codes: redemption p50 {figures['p50'] * 1000:.2f} ms, "
                    f"p99 {figures['p99'] * 1000:.2f} ms, look-up p50 {figures['lookup_p50'] * 1000:.2f} ms "
                    f"({figures['n']} redemptions of random codes)",
                    flush=True,
                )
                print(
                    "  plan of the code look-up:\n    " + figures["plan"].replace("\n", "\n    "), flush=True
                )
            stack.close()
        finally:
            postgres.stop()

    print("\nredemption latency by table size (service level, PostgreSQL):")
    for figures in rows:
        print(
            f"  {figures['size']:>12,} codes  p50 {figures['p50'] * 1000:6.2f} ms  p99 {figures['p99'] * 1000:6.2f} ms"
        )
    ratio = rows[-1]["p50"] / rows[0]["p50"]
    verdict = "PASS" if ratio <= FLAT_FACTOR and all("Index Scan" in f["plan"] for f in rows) else "MISS"
    print(
        f"p50 at {rows[-1]['size']:,} / p50 at {rows[0]['size']:,} = {ratio:.2f}; "
        f"every look-up an index scan  [target flat (<= {FLAT_FACTOR}x): {verdict}]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
