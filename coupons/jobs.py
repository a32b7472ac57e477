"""Background code generation and import jobs: chunked, one transaction per chunk, resumable after a crash."""

# A job is a Job row plus JobChunk rows. A runner (coupons.tasks.job_run_task, on the `bulk` cluster) claims
# the next pending chunk with a row lock, does its work, marks it done and adds to Job.done, all in one
# transaction: a crash rolls the chunk back, so running it again is safe and the job ends with exactly its
# total. Several runners may share a job. The broker is only a doorbell: a schedule (jobs_recover_stale)
# re-enqueues runners for jobs whose heartbeat went quiet and finishes jobs a crash left unfinished.

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django_q.tasks import async_task

from config import metrics
from coupons import bulk, services
from coupons.errors import ApplicationError, invalid
from coupons.models import Coupon, Job, JobChunk, Member, Offer

logger = logging.getLogger(__name__)

JOB_CLUSTER = "bulk"  # the ALT_CLUSTERS entry with a long timeout, so bulk work never delays webhooks
CHUNK_MAX_ATTEMPTS = 3
UNFINISHED = (Job.State.QUEUED, Job.State.RUNNING)


# --- starting -----------------------------------------------------------------------------------


def job_generate_start(
    *,
    offer: Offer,
    count: int | None = None,
    member_ids: list[int] | None = None,
    multiple: bool = True,
    enqueue: bool = True,
) -> Job:
    """Check a generation request in full, then create its job; the cluster starts it once this commits.

    Give `count` (codes with no member) or `member_ids` (one code per member; with `multiple` False a member
    already holding a live code of the offer gets none, Redcat's `Multiple: false`). Bad input, unknown
    members and the 1 % code-space guard raise ApplicationError (400) before any job exists. With `enqueue`
    False the caller runs the job itself (job_run), as `generate_codes --here` does.
    """
    _generate_request_check(count, member_ids, multiple)
    with transaction.atomic():
        # The offer lock orders concurrent starts, so two jobs cannot both pass the code-space guard.
        offer = Offer.objects.select_for_update().select_related("site").get(pk=offer.pk)
        if member_ids is not None:
            members = services.members_resolve(member_ids, offer=offer)
            if not multiple:
                members = services.members_without_live_code(offer, members)
            ids = [m.id for m in members]
            total = len(ids)
        else:
            ids, total = None, count
        _capacity_check(offer, total)
        job = Job.objects.create(
            kind=Job.Kind.GENERATE,
            offer=offer,
            total=total,
            params={"count": count, "members": len(member_ids or []), "multiple": multiple},
        )
        if total:
            chunks = _chunks_create(job, total, ids)
            if enqueue:
                job_enqueue_on_commit(job, runners=chunks)
        else:
            job = job_finish(job_id=job.pk)  # Multiple false and every member already holds a live code
    return job


def _generate_request_check(count, member_ids, multiple) -> None:
    if (member_ids is None) == (count is None):
        raise invalid("Give either Members or count.", Members="required", count="required")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise invalid("count is a whole number of at least 1.", count="invalid")
    if not isinstance(multiple, bool):
        raise invalid("Multiple is true or false.", Multiple="invalid")
    size = count if count is not None else len(member_ids) if isinstance(member_ids, list) else 0
    if size > settings.JOB_MAX_CODES:
        raise invalid(f"A job makes at most {settings.JOB_MAX_CODES} codes.", count="too_large")


def _capacity_check(offer: Offer, adding: int) -> None:
    """The 1 % guard, counting the codes that unfinished jobs of the offer are still to make."""
    reserved = (
        Job.objects.filter(offer=offer, kind=Job.Kind.GENERATE, state__in=UNFINISHED).aggregate(
            left=Sum(F("total") - F("done"))
        )["left"]
        or 0
    )
    services.codes_capacity_check(offer, adding + reserved)


def _chunks_create(job: Job, total: int, member_ids: list[int] | None) -> int:
    size = settings.JOB_CHUNK_SIZE
    chunks = [
        JobChunk(
            job=job,
            index=index,
            size=min(size, total - start),
            member_ids=member_ids[start : start + size] if member_ids is not None else None,
        )
        for index, start in enumerate(range(0, total, size))
    ]
    JobChunk.objects.bulk_create(chunks, batch_size=1000)
    return len(chunks)


def job_import_create(*, offer: Offer, payload: bytes, rows: int, params: dict) -> Job:
    """A job importing one uploaded file in a single transaction (all or nothing); csv_io validates it there."""
    with transaction.atomic():
        job = Job.objects.create(kind=Job.Kind.IMPORT, offer=offer, total=rows, params=params)
        JobChunk.objects.create(job=job, index=0, size=rows, payload=payload)
        job_enqueue_on_commit(job, runners=1)
    return job


def job_limits_start(*, offer: Offer) -> Job:
    """A job giving the offer's existing codes its new use limit, one range of code ids per chunk.

    The ranges split the ids of the whole code table (its largest id is one index look-up, where the offer's
    own span would be a scan); the last range has no end, so codes made meanwhile with the old limit are
    caught too. Each chunk reads the offer's limit as it runs: when the limit changes again, the last wins.
    Call it inside the transaction that changed the offer.
    """
    last = Coupon.objects.order_by("-id").values_list("id", flat=True).first() or 0
    size = settings.JOB_CHUNK_SIZE
    ranges = max(1, -(-last // size))
    with transaction.atomic():
        job = Job.objects.create(
            kind=Job.Kind.LIMITS, offer=offer, total=ranges * size, params={"ids_per_chunk": size}
        )
        JobChunk.objects.bulk_create(
            (JobChunk(job=job, index=index, size=size) for index in range(ranges)), batch_size=1000
        )
        job_enqueue_on_commit(job, runners=ranges)
    return job


def job_enqueue_on_commit(job: Job, *, runners: int = 1) -> None:
    """Ring the bulk cluster's doorbell once the job's rows are committed (a runner per worker, at most)."""
    workers = settings.Q_CLUSTER.get("ALT_CLUSTERS", {}).get(JOB_CLUSTER, {}).get("workers", 1)
    transaction.on_commit(partial(_enqueue, job.pk, max(1, min(runners, workers))))


def _enqueue(job_id: int, runners: int) -> None:
    for _ in range(runners):
        async_task("coupons.tasks.job_run_task", job_id, cluster=JOB_CLUSTER, task_name=f"job-{job_id}")


# --- running ------------------------------------------------------------------------------------


def job_run(*, job_id: int) -> Job | None:
    """Work through the job's pending chunks, then finish it. Safe to run twice at once or after a crash."""
    now = timezone.now()
    Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(
        state=Job.State.RUNNING, started_at=now, heartbeat_at=now
    )
    while True:
        outcome = _chunk_run_next(job_id)
        if outcome == "failed":
            return Job.objects.filter(pk=job_id).first()  # the sweep retries it later, or it has failed
        if outcome == "none_left":
            return job_finish(job_id=job_id)


def _chunk_run_next(job_id: int) -> str:
    chunk_id = None
    try:
        pending = JobChunk.objects.filter(
            job_id=job_id, state=JobChunk.State.PENDING, job__state=Job.State.RUNNING
        )
        job = Job.objects.select_related("offer", "offer__site").filter(pk=job_id).first()
        if job is None:
            return "none_left"
        write = None
        if job.kind in CHUNK_PREPARE:
            # The chunk's reading and checking run before its transaction: SQLite's write lock (taken at
            # BEGIN) is then held only for the writes. The chunk is claimed after, if still pending.
            chunk = pending.order_by("index").first()
            if chunk is None:
                return "none_left"
            chunk_id = chunk.pk
            write = CHUNK_PREPARE[job.kind](job, chunk)
            pending = pending.filter(pk=chunk_id)
        with transaction.atomic():
            # skip_locked: a chunk another runner holds is not ours; its lock ends with that runner's transaction.
            chunk = pending.select_for_update(skip_locked=True, of=("self",)).order_by("index").first()
            if chunk is None:
                return "none_left"
            chunk_id = chunk.pk
            made = write() if write is not None else CHUNK_WORK[job.kind](job, chunk)
            _chunk_done(job, chunk, made)
        return "done"
    except ApplicationError as error:
        # A refusal (the code space filled up, an import row no longer valid) will not pass on a retry.
        _chunk_failed(
            job_id, chunk_id, error.message, permanent=True, details=getattr(error, "rows", None),
            others_codes=getattr(error, "others_codes", 0),
        )  # fmt: skip
    except Exception as error:
        logger.exception("Job %s chunk %s failed", job_id, chunk_id)
        _chunk_failed(job_id, chunk_id, f"{type(error).__name__}: {error}", permanent=False)
    return "failed"


def _chunk_done(job: Job, chunk: JobChunk, made: int) -> None:
    now = timezone.now()
    JobChunk.objects.filter(pk=chunk.pk).update(state=JobChunk.State.DONE, made=made, done_at=now, error="")
    # Members skipped by Multiple false leave the total too, so a finished job always reads done == total.
    # An import is one chunk whose progress was already published as it went: its count replaces it.
    done = made if job.kind == Job.Kind.IMPORT else F("done") + made
    Job.objects.filter(pk=job.pk).update(done=done, total=F("total") - (chunk.size - made), heartbeat_at=now)
    transaction.on_commit(partial(metrics.codes_generated_count, made))


def _chunk_failed(
    job_id: int, chunk_id: int | None, message: str, *, permanent: bool, details=None, others_codes: int = 0
) -> None:
    with transaction.atomic():
        chunk = JobChunk.objects.select_for_update().filter(pk=chunk_id).first() if chunk_id else None
        attempts = (chunk.attempts + 1) if chunk else CHUNK_MAX_ATTEMPTS
        failed = permanent or attempts >= CHUNK_MAX_ATTEMPTS
        if chunk:
            JobChunk.objects.filter(pk=chunk.pk).update(
                attempts=attempts,
                error=message,
                state=JobChunk.State.FAILED if failed else JobChunk.State.PENDING,
            )
        if failed:
            job_fail(job_id=job_id, error=message, details=details, others_codes=others_codes)


def job_fail(*, job_id: int, error: str, details: list | None = None, others_codes: int = 0) -> None:
    """Mark an unfinished job failed, saying why (and, for an import, which rows).

    `others_codes` (never shown) is how many of those rows other merchants' codes refused: the API counts
    them against the unknown-code limit before it shows the rows.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id, state__in=UNFINISHED).first()
        if job is None:
            return
        job.state, job.error, job.finished_at = Job.State.FAILED, error[:10000], timezone.now()
        # What is really stored: progress published from inside a rolled-back chunk does not count.
        job.done = job.chunks.filter(state=JobChunk.State.DONE).aggregate(made=Sum("made"))["made"] or 0
        if details is not None:
            job.params = {**job.params, "errors": details}
        if others_codes:
            job.params = {**job.params, "others_codes": others_codes}
        job.save(update_fields=["state", "error", "finished_at", "done", "params"])


def job_finish(*, job_id: int) -> Job | None:
    """Close a job whose chunks are all through: succeeded, or failed if one of them failed."""
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state not in UNFINISHED:
            return job
        states = set(job.chunks.values_list("state", flat=True).distinct())
        if JobChunk.State.PENDING in states:
            return job  # another runner holds the last chunks; it finishes the job
        now = timezone.now()
        if JobChunk.State.FAILED in states:
            job.state, job.error = Job.State.FAILED, job.error or "A chunk of this job failed."
        else:
            job.state = Job.State.SUCCEEDED
        job.finished_at, job.heartbeat_at = now, now
        job.started_at = job.started_at or now
        job.save(update_fields=["state", "error", "finished_at", "heartbeat_at", "started_at"])
    return job


@contextmanager
def progress_publisher(job: Job) -> Iterator[Callable[[int], None]]:
    """A callback that shows a long chunk's progress on the job row while its transaction is still open.

    On PostgreSQL it writes through a connection of its own, committed at once (the chunk's transaction
    does not lock the job row until it finishes). SQLite allows one writer at a time: there the job row
    shows the chunk's count when it commits.
    """
    if connection.vendor != "postgresql":
        yield lambda done: None
        return
    side = connections.create_connection(DEFAULT_DB_ALIAS)
    table = connection.ops.quote_name(Job._meta.db_table)

    def publish(done: int) -> None:
        with side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET done = %s, heartbeat_at = %s WHERE id = %s",
                [done, timezone.now(), job.pk],
            )

    try:
        yield publish
    finally:
        side.close()


def job_retry(*, job: Job) -> Job:
    """Run a failed job again from where it stopped: its failed chunks become pending, done ones stay done."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.state != Job.State.FAILED:
            raise invalid("Only a failed job can be retried.", state="not_failed")
        pending = job.chunks.exclude(state=JobChunk.State.DONE).update(
            state=JobChunk.State.PENDING, attempts=0, error=""
        )
        job.state, job.error, job.finished_at, job.heartbeat_at = Job.State.QUEUED, "", None, timezone.now()
        job.save(update_fields=["state", "error", "finished_at", "heartbeat_at"])
        job_enqueue_on_commit(job, runners=pending)
    return job


def jobs_recover_stale(*, now=None) -> int:
    """Re-enqueue runners for unfinished jobs gone quiet (lost broker message, killed worker); returns how many."""
    now = now or timezone.now()
    quiet_since = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    stale = Job.objects.filter(state__in=UNFINISHED).filter(
        Q(heartbeat_at__lt=quiet_since) | Q(heartbeat_at__isnull=True, created_at__lt=quiet_since)
    )
    recovered = 0
    for job in stale:
        with transaction.atomic():
            # Bumping the heartbeat first keeps one quiet job from being re-enqueued at every sweep.
            if not Job.objects.filter(pk=job.pk, state__in=UNFINISHED).update(heartbeat_at=now):
                continue
            pending = job.chunks.filter(state=JobChunk.State.PENDING).count()
            if pending:
                job_enqueue_on_commit(job, runners=pending)
            else:
                transaction.on_commit(partial(job_finish, job_id=job.pk))
        recovered += 1
    return recovered


# --- what a chunk does, by job kind --------------------------------------------------------------


def _generate_chunk(job: Job, chunk: JobChunk) -> int:
    offer = job.offer
    if chunk.member_ids is None:
        return bulk.coupons_generate(offer=offer, job=job, count=chunk.size, issued=not offer.issue_from_pool)
    if not job.params.get("multiple", True):
        # Locked like coupons_create, so a member never gets two live codes from concurrent requests.
        offer = Offer.objects.select_for_update().select_related("site").get(pk=offer.pk)
    # A member deleted since the job started gets no code (and leaves the total, like one skipped).
    found = Member.objects.in_bulk(set(chunk.member_ids))
    members = [found[i] for i in chunk.member_ids if i in found]
    if not job.params.get("multiple", True):
        members = services.members_without_live_code(offer, members)
    return bulk.coupons_generate(offer=offer, job=job, members=members)


def _limits_chunk(job: Job, chunk: JobChunk) -> int:
    size = job.params["ids_per_chunk"]
    is_last = not JobChunk.objects.filter(job=job, index__gt=chunk.index).exists()
    first_id = chunk.index * size
    # The offer as it is now (locked, so a change in flight is not half applied): its latest limit wins.
    offer = Offer.objects.select_for_update().get(pk=job.offer_id)
    services.coupon_limits_follow_offer(
        offer=offer, first_id=first_id, last_id=None if is_last else first_id + size
    )
    return chunk.size


# What a chunk does, inside its transaction; returns how much of the job's total it did (codes, or code ids).
CHUNK_WORK: dict[str, Callable[[Job, JobChunk], int]] = {
    Job.Kind.GENERATE: _generate_chunk,
    Job.Kind.LIMITS: _limits_chunk,
}
# Kinds whose chunk reads and checks its input before the transaction; the writing it returns runs inside.
# The engine knows no such kind itself: the module that owns one registers it (csv_io: imports).
CHUNK_PREPARE: dict[str, Callable[[Job, JobChunk], Callable[[], int]]] = {}
