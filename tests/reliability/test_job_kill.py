"""A bulk cluster SIGKILLed in the middle of a generation job: another one finishes it with exactly N codes.

The stale-job schedule runs every minute; here its task is enqueued at once (the same task), and
JOB_STALE_SECONDS is 1 so the killed runner's job counts as quiet a second after its last chunk.
"""

from __future__ import annotations

import time

import pytest

from tests.stack import Stack, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CODES = 300_000
CHUNK = 5_000


def job_state(stack: Stack, job_id: int) -> tuple[str, int, int]:
    return tuple(stack.sql("SELECT state, done, total FROM coupons_job WHERE id = %s", (job_id,))[0])


def test_a_generation_job_whose_worker_is_killed_resumes_to_exactly_n_codes(make_stack) -> None:
    stack: Stack = make_stack(redis=True, JOB_CHUNK_SIZE=str(CHUNK), JOB_STALE_SECONDS="1")
    offer_id = stack.world(codes=0)["offer_id"]
    stack.cluster("default")
    bulk = stack.cluster("bulk-a", Q_CLUSTER_NAME="bulk")
    job_id = stack.django(
        "from coupons import jobs\nfrom coupons.models import Offer\n"
        "result = jobs.job_generate_start(offer=Offer.objects.get(pk=offer_id), count=count).pk",
        offer_id=offer_id,
        count=CODES,
    )

    # Kill the runner while the job is part done: some chunks committed, at least one in progress.
    wait_until(lambda: job_state(stack, job_id)[1] >= 2 * CHUNK, 60, "two chunks done", interval=0.01)
    bulk.kill()
    # One snapshot of progress and codes: a chunk whose COMMIT reached PostgreSQL just before the kill may
    # still land after it, so two separate reads could straddle it.
    state, done, total, stored = stack.sql(
        "SELECT state, done, total, (SELECT count(*) FROM coupons_coupon WHERE offer_id = %s)"
        " FROM coupons_job WHERE id = %s",
        (offer_id, job_id),
    )[0]
    assert state == "running" and 0 < done < total == CODES, (state, done, total)
    # Whatever the killed runner had half written was rolled back with its transaction.
    assert stored == done

    stack.cluster("bulk-b", Q_CLUSTER_NAME="bulk")
    time.sleep(1.1)  # the job's heartbeat is now older than JOB_STALE_SECONDS
    stack.enqueue("coupons.tasks.jobs_recover_stale_task")
    wait_until(lambda: job_state(stack, job_id)[0] != "running", 120, "the job to finish", interval=0.2)

    assert job_state(stack, job_id) == ("succeeded", CODES, CODES)
    codes, distinct = stack.sql(
        "SELECT count(*), count(DISTINCT code) FROM coupons_coupon WHERE offer_id = %s", (offer_id,)
    )[0]
    assert codes == distinct == CODES
    chunks = dict(
        stack.sql("SELECT state, count(*) FROM coupons_jobchunk WHERE job_id = %s GROUP BY state", (job_id,))
    )
    assert chunks == {"done": CODES // CHUNK}
    print(f"killed at {done:,} of {CODES:,} codes; resumed to exactly {codes:,}")
