"""Background generation jobs: chunks, progress, exactly N codes after a crash, Multiple, the code-space guard."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from coupons import events, jobs, services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Job
from tests import factories
from tests.concurrency import all_at_once
from webhooks.models import Event

CHUNK = 700


@pytest.fixture
def small_chunks(settings):
    settings.JOB_CHUNK_SIZE = CHUNK


@pytest.fixture
def one_runner(settings):
    """One bulk worker, so one runner works through the job and stops at the first failing chunk."""
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"bulk": {"workers": 1}}}


@pytest.fixture
def cluster_inline(monkeypatch):
    """Enqueued tasks run at once in this process (django-q2 reads `sync` at import, so Conf is patched)."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks, cluster_inline):
    """Start jobs inside the test's transaction and run what they enqueue when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def created_codes(offer) -> list[str]:
    """The codes announced by coupon.created, checking every message holds at most 500."""
    codes = []
    for event in Event.objects.filter(type="coupon.created", offer=offer).order_by("id"):
        assert 0 < len(event.data["coupons"]) <= events.CREATED_CHUNK
        codes += [c["code"] for c in event.data["coupons"]]
    return codes


def stored_codes(offer) -> list[str]:
    return list(Coupon.objects.filter(offer=offer).values_list("code", flat=True))


def fail_chunk(monkeypatch, index: int, times: int = 1, error=RuntimeError("disk full")):
    """Make chunk `index` raise `times` times after its codes and events are written, as a crash would."""
    real_done = jobs._chunk_done
    left = {"n": times}

    def chunk_done(job, chunk, made):
        if chunk.index == index and left["n"] > 0:
            left["n"] -= 1
            assert Coupon.objects.filter(job=job).count() > job.done  # written, about to be rolled back
            raise error
        real_done(job, chunk, made)

    monkeypatch.setattr(jobs, "_chunk_done", chunk_done)


def sweep_later(minutes: int = 5) -> int:
    return jobs.jobs_recover_stale(now=timezone.now() + timedelta(minutes=minutes))


# --- a job, its chunks and its progress -----------------------------------------------------------


def test_a_job_makes_exactly_n_unique_codes_in_chunks_announced_500_at_most_a_message(
    offer, small_chunks, run_on_commit
):
    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, count=3000)

    job.refresh_from_db()
    assert (job.state, job.done, job.total, job.error) == (Job.State.SUCCEEDED, 3000, 3000, "")
    assert job.started_at and job.finished_at
    assert list(job.chunks.values_list("size", "made", "state")) == [(700, 700, "done")] * 4 + [
        (200, 200, "done")
    ]
    codes = stored_codes(offer)
    assert len(codes) == len(set(codes)) == 3000
    assert sorted(created_codes(offer)) == sorted(codes)
    # Two messages for each chunk of 700 (500 + 200), one for the last chunk of 200.
    assert Event.objects.filter(type="coupon.created", offer=offer).count() == 9
    assert set(Coupon.objects.filter(offer=offer).values_list("job_id", "max_redemptions", "status")) == {
        (job.id, 1, "active")
    }


def test_progress_counts_each_committed_chunk_and_a_crashed_chunk_leaves_nothing_behind(
    offer, small_chunks, run_on_commit, monkeypatch, one_runner
):
    fail_chunk(monkeypatch, index=2)
    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, count=3000)

    job.refresh_from_db()
    assert (job.state, job.done) == (Job.State.RUNNING, 1400)  # chunks 0 and 1 committed, 2 rolled back
    assert len(stored_codes(offer)) == len(created_codes(offer)) == 1400
    crashed = job.chunks.get(index=2)
    assert (crashed.state, crashed.attempts, crashed.error) == ("pending", 1, "RuntimeError: disk full")

    assert jobs.jobs_recover_stale() == 0  # its heartbeat is fresh: a runner may still be at work
    with run_on_commit():
        assert sweep_later() == 1  # quiet for longer than JOB_STALE_SECONDS: a new runner resumes it

    job.refresh_from_db()
    assert (job.state, job.done, job.total) == (Job.State.SUCCEEDED, 3000, 3000)
    codes = stored_codes(offer)
    assert len(codes) == len(set(codes)) == 3000
    assert sorted(created_codes(offer)) == sorted(codes)


def test_a_chunk_failing_every_time_fails_the_job_saying_why_and_a_retry_finishes_it(
    offer, small_chunks, run_on_commit, monkeypatch, one_runner
):
    fail_chunk(monkeypatch, index=1, times=jobs.CHUNK_MAX_ATTEMPTS)
    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, count=3000)
    for attempt in range(1, jobs.CHUNK_MAX_ATTEMPTS):
        with run_on_commit():
            assert sweep_later(minutes=5 * attempt) == 1  # each sweep finds it quiet again

    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error == "RuntimeError: disk full"
    assert job.done == CHUNK == len(stored_codes(offer))
    assert sweep_later(minutes=60) == 0  # a failed job is left alone

    with run_on_commit():
        jobs.job_retry(job=job)
    job.refresh_from_db()
    assert (job.state, job.done, job.error) == (Job.State.SUCCEEDED, 3000, "")
    assert len(set(stored_codes(offer))) == 3000
    with pytest.raises(ApplicationError):
        jobs.job_retry(job=job)  # only a failed job can be retried


def test_a_refusal_inside_a_chunk_fails_the_job_at_once(offer, run_on_commit):
    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, count=50)
        # While the job waits, the offer's code format is narrowed to 16 possible codes (1 % of it: none).
        Offer = type(offer)
        Offer.objects.filter(pk=offer.pk).update(code_length=4, code_alphabet="AB")

    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "code" in job.error
    assert job.chunks.get().attempts == 1 and not stored_codes(offer)


def test_the_stale_sweep_finishes_a_job_whose_last_chunk_committed_before_a_crash(offer, run_on_commit):
    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, count=20)
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, finished_at=None)  # the finish was lost

    with run_on_commit():
        assert sweep_later() == 1
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.done == 20 == len(stored_codes(offer))


def test_a_job_is_enqueued_on_the_bulk_cluster_only_once_it_commits(
    offer, small_chunks, django_capture_on_commit_callbacks, settings
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        jobs.job_generate_start(offer=offer, count=3000)
        raise RuntimeError("the request failed after starting the job")
    assert not Job.objects.exists() and not OrmQ.objects.exists()

    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "ALT_CLUSTERS": {"bulk": {"workers": 2}}}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        job = jobs.job_generate_start(offer=offer, count=3000)
        assert not OrmQ.objects.exists()  # nothing before the commit
    assert len(callbacks) == 1
    assert list(OrmQ.objects.values_list("key", flat=True)) == ["bulk", "bulk"]  # one runner per worker
    assert {(task.func(), task.task["args"]) for task in OrmQ.objects.all()} == {
        ("coupons.tasks.job_run_task", (job.id,))
    }


@pytest.mark.django_db(transaction=True)
def test_two_runners_share_one_job_and_never_make_a_chunk_twice(offer, small_chunks):
    job = jobs.job_generate_start(offer=offer, count=7 * CHUNK, enqueue=False)
    all_at_once(lambda _: jobs.job_run(job_id=job.id), 2)
    job.refresh_from_db()
    assert (job.state, job.done) == (Job.State.SUCCEEDED, 7 * CHUNK)
    assert list(job.chunks.values_list("made", flat=True)) == [CHUNK] * 7
    codes = stored_codes(offer)
    assert len(codes) == len(set(codes)) == 7 * CHUNK == len(created_codes(offer))


# --- what a job is asked for --------------------------------------------------------------------


def test_a_members_job_without_multiple_gives_no_second_live_code(offer, run_on_commit):
    holder, lapsed, *others = factories.MemberFactory.create_batch(4, merchant=offer.merchant)
    services.coupons_create(offer=offer, member_ids=[holder.id])
    old = services.coupons_create(offer=offer, member_ids=[lapsed.id])[0]
    Coupon.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    asked = [holder.id, lapsed.id, others[0].id, others[1].id, others[0].id]

    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, member_ids=asked, multiple=False)

    job.refresh_from_db()
    assert (job.state, job.done, job.total) == (Job.State.SUCCEEDED, 3, 3)
    made = Coupon.objects.filter(job=job)
    assert sorted(made.values_list("member_id", flat=True)) == sorted([lapsed.id, others[0].id, others[1].id])
    assert Coupon.objects.filter(offer=offer, member=holder).count() == 1
    issued = Event.objects.filter(
        type="coupon.issued", data__coupon__code__in=list(made.values_list("code", flat=True))
    )
    assert issued.count() == 3
    announced = Event.objects.filter(type="coupon.created", offer=offer).order_by("-id").first()
    assert sorted(c["member_id"] for c in announced.data["coupons"]) == sorted(
        made.values_list("member_id", flat=True)
    )


def test_a_members_job_with_multiple_gives_every_entry_a_code(offer, run_on_commit):
    member, other = factories.MemberFactory.create_batch(2, merchant=offer.merchant)
    services.coupons_create(offer=offer, member_ids=[member.id])

    with run_on_commit():
        job = jobs.job_generate_start(offer=offer, member_ids=[member.id, member.id, other.id], multiple=True)

    job.refresh_from_db()
    assert (job.state, job.done) == (Job.State.SUCCEEDED, 3)
    assert Coupon.objects.filter(offer=offer, member=member).count() == 3


def test_a_member_deleted_while_the_job_waits_gets_no_code_and_leaves_the_total(offer):
    kept, gone = factories.MemberFactory.create_batch(2, merchant=offer.merchant)
    job = jobs.job_generate_start(offer=offer, member_ids=[kept.id, gone.id], enqueue=False)
    gone.delete()

    jobs.job_run(job_id=job.id)
    job.refresh_from_db()
    assert (job.state, job.done, job.total) == (Job.State.SUCCEEDED, 1, 1)
    assert list(Coupon.objects.filter(job=job).values_list("member_id", flat=True)) == [kept.id]


def test_a_members_job_with_nobody_left_to_serve_succeeds_at_once(offer, member):
    services.coupons_create(offer=offer, member_ids=[member.id])
    job = jobs.job_generate_start(offer=offer, member_ids=[member.id], multiple=False)
    assert (job.state, job.done, job.total) == (Job.State.SUCCEEDED, 0, 0) and not job.chunks.exists()


def test_the_code_space_guard_refuses_before_any_job_exists(site):
    # 10 characters, 4 long: 10,000 possible codes, so at most 100 may exist.
    offer = factories.OfferFactory(site=site, code_length=4, code_alphabet="ABCDEFGHJK")
    with pytest.raises(ApplicationError) as refused:
        jobs.job_generate_start(offer=offer, count=101)
    assert refused.value.status == 400 and refused.value.fields == {"count": ["exceeds_code_space"]}
    assert not Job.objects.exists()

    jobs.job_generate_start(offer=offer, count=60, enqueue=False)  # still queued: its 60 are reserved
    with pytest.raises(ApplicationError):
        jobs.job_generate_start(offer=offer, count=41)
    assert Job.objects.count() == 1


@pytest.mark.parametrize(
    "request_, field",
    [
        ({"count": 0}, "count"),
        ({"count": -5}, "count"),
        ({"count": True}, "count"),
        ({"count": "10"}, "count"),
        ({}, "Members"),
        ({"count": 5, "member_ids": [1]}, "Members"),
        ({"member_ids": "1,2"}, "Members"),
        ({"member_ids": [10**12]}, "Members"),
        ({"member_ids": [1], "multiple": "no"}, "Multiple"),
        ({"count": 10**9}, "count"),
    ],
)
def test_bad_requests_are_refused_before_any_job_exists(offer, request_, field):
    with pytest.raises(ApplicationError) as refused:
        jobs.job_generate_start(offer=offer, **request_)
    assert refused.value.status == 400 and field in refused.value.fields
    assert not Job.objects.exists()


# --- the bulk writers (COPY on PostgreSQL, executemany on SQLite) announce what the services would ------


def test_bulk_messages_carry_the_same_snapshot_as_the_one_by_one_path(site, run_on_commit):
    offer = factories.OfferFactory(
        site=site, coupon_type="mystery", discount_value=None, expiry_type="relative", expiry_value=2,
        expiry_unit="day", code_prefix="BLK-",
        mystery_discounts=[{"coupon_type": "percentage", "discount_value": "15", "weight": 1},
                           {"coupon_type": "freeShipping", "weight": 1}],
    )  # fmt: skip
    members = factories.MemberFactory.create_batch(3, merchant=offer.merchant)
    with run_on_commit():
        jobs.job_generate_start(offer=offer, count=700)
        jobs.job_generate_start(offer=offer, member_ids=[m.id for m in members])

    coupons = {c.code: c for c in Coupon.objects.filter(offer=offer).select_related("member", "offer")}
    messages = Event.objects.filter(type="coupon.created", offer=offer).order_by("id")
    assert [len(m.data["coupons"]) for m in messages] == [500, 200, 3]
    for message in messages:
        listed = [coupons[c["code"]] for c in message.data["coupons"]]
        assert [c.id for c in listed] == sorted(c.id for c in listed)
        assert message.data == events.event_base(offer) | {
            "coupons": [events.coupon_snapshot(c, c.member and c.member.profiles.get()) for c in listed]
        }
    assert {c.discount_type for c in coupons.values()} <= {"percentage", "freeShipping"}
    assert all(c.code.startswith("BLK-") and c.uuid.version == 7 for c in coupons.values())


# --- the command and the admin ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_generate_codes_waits_for_the_job_with_a_progress_bar(offer, small_chunks, cluster_inline):
    out = StringIO()
    call_command("generate_codes", str(offer.id), "--count", "1500", "--wait", stdout=out)
    output = out.getvalue()
    assert f"codes for offer {offer.id}" in output
    assert "Job" in output and "succeeded: 1,500 codes" in output and "100%" in output
    assert len(stored_codes(offer)) == 1500


@pytest.mark.django_db(transaction=True)
def test_generate_codes_here_runs_the_job_without_a_cluster(offer, small_chunks, member):
    out = StringIO()
    call_command(
        "generate_codes", str(offer.id), "--members", f"{member.id},{member.id}", "--here", stdout=out
    )
    assert "succeeded: 2 codes" in out.getvalue()
    assert not OrmQ.objects.exists()  # nothing was left for the cluster
    with pytest.raises(CommandError, match="Unknown members"):
        call_command("generate_codes", str(offer.id), "--members", "999999", stdout=out)
    with pytest.raises(CommandError, match="No offer"):
        call_command("generate_codes", "999999", "--count", "5", stdout=out)


def test_the_generate_action_asks_with_a_form_then_starts_a_job_per_offer(
    admin_client, offer, site, run_on_commit
):
    other = factories.OfferFactory(site=site)
    changelist = reverse("admin:coupons_offer_changelist")
    chosen = {"action": "generate_codes", "_selected_action": [offer.pk, other.pk]}

    page = admin_client.post(changelist, chosen)
    assert page.status_code == 200 and b"Generate codes" in page.content and not Job.objects.exists()
    refused = admin_client.post(changelist, chosen | {"apply": "1", "count": "", "members": ""})
    assert b"Give either a number of codes or member ids." in refused.content and not Job.objects.exists()

    with run_on_commit():
        done = admin_client.post(
            changelist, chosen | {"apply": "1", "count": "25", "multiple": "on"}, follow=True
        )
    assert done.status_code == 200
    assert sorted(Job.objects.values_list("offer_id", "total", "state")) == sorted(
        [(offer.pk, 25, "succeeded"), (other.pk, 25, "succeeded")]
    )
    assert b"makes 25 codes" in done.content


def test_the_offer_page_and_the_job_admin_show_progress_and_a_refusal(admin_client, offer, run_on_commit):
    job = jobs.job_generate_start(offer=offer, count=40, enqueue=False)
    Job.objects.filter(pk=job.pk).update(done=10, state=Job.State.RUNNING)

    page = admin_client.get(reverse("admin:coupons_offer_change", args=[offer.pk])).content.decode()
    assert "Code jobs" in page and '<progress value="10" max="40"' in page and "10 / 40 (25 %)" in page
    assert reverse("admin:coupons_offer_import_codes", args=[offer.pk]) in page
    listing = admin_client.get(reverse("admin:coupons_job_changelist")).content.decode()
    assert '<progress value="10" max="40"' in listing
    assert admin_client.get(reverse("admin:coupons_job_change", args=[job.pk])).status_code == 200

    small = factories.OfferFactory(site=offer.site, code_length=4, code_alphabet="ABCDEFGHJK")
    form = reverse("admin:coupons_offer_generate_codes", args=[small.pk])
    refused = admin_client.post(form, {"count": "500"}, follow=True).content.decode()
    assert "allows 100 codes" in refused and Job.objects.count() == 1  # the code-space guard, as a message


def test_staff_without_the_right_to_make_codes_cannot_reach_the_forms(client, offer, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(*_permissions("view_offer", "view_coupon", "view_job"))
    client.force_login(viewer)
    assert client.get(reverse("admin:coupons_offer_generate_codes", args=[offer.pk])).status_code == 403
    assert client.get(reverse("admin:coupons_offer_import_codes", args=[offer.pk])).status_code == 403
    page = client.get(reverse("admin:coupons_offer_change", args=[offer.pk])).content.decode()
    assert "Generate codes…" not in page and "Export codes as CSV" in page


def _permissions(*codenames):
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="coupons", codename__in=codenames)
