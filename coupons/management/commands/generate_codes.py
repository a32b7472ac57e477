"""Generate an offer's codes with a background job, optionally waiting for it with a progress bar."""

import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from tqdm import tqdm

from coupons import jobs
from coupons.errors import ApplicationError
from coupons.models import Job, Offer

POLL_SECONDS = 0.5
NOT_STARTED_HINT_SECONDS = 30


class Command(BaseCommand):
    help = (
        "Generate codes for an offer with a background job on the bulk cluster "
        "(Q_CLUSTER_NAME=bulk manage.py qcluster, started by runplatform)."
    )

    def add_arguments(self, parser):
        parser.add_argument("offer_id", type=int)
        what = parser.add_mutually_exclusive_group(required=True)
        what.add_argument("--count", type=int, help="How many codes, with no member.")
        what.add_argument("--members", help="Member ids, comma-separated: one code each.")
        parser.add_argument(
            "--no-multiple",
            action="store_true",
            help="Give no second code to a member who already holds a live code of the offer.",
        )
        parser.add_argument("--wait", action="store_true", help="Wait for the job, with a progress bar.")
        parser.add_argument(
            "--here", action="store_true", help="Run the job in this process instead of the cluster (waits)."
        )

    def handle(self, *args, offer_id, count, members, no_multiple, wait, here, **options):
        offer = Offer.objects.filter(pk=offer_id).first()
        if offer is None:
            raise CommandError(f"No offer has the id {offer_id}.")
        try:
            job = jobs.job_generate_start(
                offer=offer, count=count, member_ids=_member_ids(members), multiple=not no_multiple, enqueue=not here
            )  # fmt: skip
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(f"Job {job.id}: {job.total:,} codes for offer {offer.id} ({offer.name}).")
        if not (wait or here):
            self.stdout.write(f"Follow it in the admin or at /api/v1/jobs/{job.id}/.")
            return
        runner = threading.Thread(target=_run_here, args=(job.id,), daemon=True) if here else None
        if runner:
            runner.start()
        job = self._wait(job)
        if runner:
            runner.join()
        if job.state == Job.State.FAILED:
            raise CommandError(f"Job {job.id} failed: {job.error}")
        self.stdout.write(self.style.SUCCESS(f"Job {job.id} succeeded: {job.done:,} codes."))

    def _wait(self, job: Job) -> Job:
        """Poll the job row (what the API and the admin show) until it finishes."""
        started = time.monotonic()
        hinted = False
        with tqdm(total=job.total, unit="codes", unit_scale=True, file=_Unterminated(self.stdout)) as bar:
            while True:
                job.refresh_from_db()
                bar.total = job.total
                bar.update(job.done - bar.n)
                if job.state in (Job.State.SUCCEEDED, Job.State.FAILED):
                    return job
                if (
                    job.state == Job.State.QUEUED
                    and not hinted
                    and time.monotonic() - started > NOT_STARTED_HINT_SECONDS
                ):
                    bar.write("The job has not started: is the bulk cluster running (runplatform starts it)?")
                    hinted = True
                time.sleep(POLL_SECONDS)


class _Unterminated:
    """The command's output for tqdm, whose carriage-return redraws must not get a newline each."""

    def __init__(self, out) -> None:
        self.out = out

    def write(self, text: str) -> None:
        self.out.write(text, ending="")

    def flush(self) -> None:
        self.out.flush()


def _member_ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    words = [word.strip() for word in text.split(",") if word.strip()]
    if not words or not all(word.isdigit() for word in words):
        raise CommandError("--members takes member ids separated by commas, e.g. 1300,1301.")
    return [int(word) for word in words]


def _run_here(job_id: int) -> None:
    try:
        jobs.job_run(job_id=job_id)
    finally:
        connection.close()  # this thread's own connection
