"""Background generation jobs: chunks, progress, exactly N codes after a crash, Multiple, the code-space guard."""

import pytest
from django.db import connection
from django_q.conf import Conf

from coupons import jobs
from coupons.errors import ApplicationError
from coupons.models import Coupon, Job, JobChunk
from tests import factories
from webhooks.models import Event


@pytest.fixture
def small_chunks(settings):
    settings.JOB_CHUNK_SIZE = 700
    return 700


@pytest.fixture
def cluster_inline(monkeypatch):
    """django-q2 runs enqueued tasks at once in this process (Conf.SYNC is read at import, so patch it)."""
    monkeypatch.setattr(Conf, "SYNC", True)


def created_codes(offer) -> list[str]:
    codes = []
    for event in Event.objects.filter(type="coupon.created", offer=offer).order_by("id"):
        assert len(event.data["coupons"]) <= 500
        codes += [c["code"] for c in event.data["coupons"]]
    return codes


@pytest.mark.django_db(transaction=True)
def test_a_job_makes_exactly_n_unique_codes_across_chunks_with_events_of_at_most_500(
    offer, small_chunks, cluster_inline
):
    job = jobs.job_generate_start(offer=offer, count=3000)

    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert (job.done, job.total) == (3000, 3000)
    assert job.chunks.count() == 5
    codes = list(Coupon.objects.filter(offer=offer, job=job).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 3000
    assert sorted(created_codes(offer)) == sorted(codes)
