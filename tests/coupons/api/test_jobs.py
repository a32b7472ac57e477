"""Background creation (202 + job), job progress, CSV export and import of own codes over the API."""

import csv
import io

from django.test import override_settings

from coupons import jobs
from coupons.models import Coupon, Job
from tests import factories
from tests.coupons.api.conftest import assert_error

JOB_FIELDS = {"id", "kind", "state", "done", "total", "error", "created_at", "finished_at"}


def test_task_server_true_answers_202_with_the_job_and_its_location(
    api, offer, django_capture_on_commit_callbacks
):
    members = factories.MemberFactory.create_batch(3, merchant=offer.merchant)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.post(
            f"/api/v1/offers/{offer.id}/coupons/",
            {"Members": [m.id for m in members], "Mulitple": False, "TaskServer": True},
            format="json",
        )
    assert response.status_code == 202
    job = response.json()
    assert set(job) >= JOB_FIELDS and job["state"] == "queued" and job["total"] == 3 and job["done"] == 0
    assert response["Location"] == f"/api/v1/jobs/{job['id']}/"
    assert callbacks, "the cluster is asked to run the job once the request commits"
    assert not Coupon.objects.exists()

    jobs.job_run(job_id=job["id"])  # what the cluster does
    done = api.get(response["Location"]).json()
    assert done["state"] == "succeeded" and done["done"] == 3 and done["finished_at"]
    listed = api.get(f"/api/v1/offers/{offer.id}/coupons/?job={job['id']}").json()
    assert {c["member_id"] for c in listed["results"]} == {m.id for m in members}


@override_settings(CODES_IN_REQUEST_MAX=10)
def test_a_count_above_the_request_maximum_always_runs_as_a_job(api, offer):
    response = api.post(f"/api/v1/offers/{offer.id}/coupons/", {"count": 11}, format="json")
    assert response.status_code == 202 and Job.objects.get().total == 11
    assert api.post(f"/api/v1/offers/{offer.id}/coupons/", {"count": 10}, format="json").status_code == 201


def test_a_job_start_refuses_unknown_members_before_any_job_exists(api, offer):
    body = {"Members": [424242], "TaskServer": True}
    assert_error(api.post(f"/api/v1/offers/{offer.id}/coupons/", body, format="json"), 400, "invalid_request")
    assert not Job.objects.exists()


def test_an_unknown_job_is_not_found(api, merchant):
    assert_error(api.get("/api/v1/jobs/424242/"), 404, "not_found")


def test_the_csv_export_streams_every_code(api, offer):
    coupons = factories.CouponFactory.create_batch(3, offer=offer)
    response = api.get(f"/api/v1/offers/{offer.id}/coupons.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    content = b"".join(response.streaming_content)
    assert not content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert [r["code"] for r in rows] == [c.code for c in coupons]


def test_the_csv_export_adds_a_bom_for_excel_on_request(api, coupon):
    response = api.get(f"/api/v1/offers/{coupon.offer_id}/coupons.csv?bom=1")
    assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbfcode,")
    assert_error(api.get(f"/api/v1/offers/{coupon.offer_id}/coupons.csv?bom=maybe"), 400, "invalid_request")


def test_a_csv_client_still_gets_json_errors(other_api, offer):
    response = other_api.get(f"/api/v1/offers/{offer.id}/coupons.csv", HTTP_ACCEPT="text/csv")
    assert_error(response, 404, "not_found")


def test_it_imports_own_codes_from_a_multipart_upload(api, offer):
    upload = io.BytesIO(b"code\nOWN-CODE-0001\nOWN-CODE-0002\n")
    upload.name = "codes.csv"
    response = api.post(f"/api/v1/offers/{offer.id}/codes/import", {"file": upload}, format="multipart")
    assert response.status_code == 201 and response.json() == {"imported": 2}
    assert set(Coupon.objects.values_list("code", flat=True)) == {"OWN-CODE-0001", "OWN-CODE-0002"}


def test_it_imports_own_codes_from_a_text_csv_body(api, offer):
    response = api.post(
        f"/api/v1/offers/{offer.id}/codes/import", b"OWN-CODE-0003\r\n", content_type="text/csv"
    )
    assert response.status_code == 201 and Coupon.objects.get().code == "OWN-CODE-0003"


def test_an_import_with_a_bad_row_imports_nothing_and_names_the_row(api, offer):
    existing = factories.CouponFactory(offer=offer)
    body = f"code\nFRESH-CODE-01\n{existing.code}\n".encode()
    response = api.post(f"/api/v1/offers/{offer.id}/codes/import", body, content_type="text/csv")
    error = assert_error(response, 400, "invalid_request")
    assert error["rows"][0]["row"] == 3 and error["rows"][0]["code"] == existing.code
    assert Coupon.objects.count() == 1


def test_an_import_refuses_a_missing_file_a_json_body_and_an_oversized_upload(api, offer):
    url = f"/api/v1/offers/{offer.id}/codes/import"
    assert_error(api.post(url, {}, format="multipart"), 400, "invalid_request")
    assert_error(api.post(url, {"file": "x"}, format="json"), 415, "unsupported_media_type")
    with override_settings(CSV_IMPORT_MAX_BYTES=100):
        assert_error(api.post(url, b"A" * 101, content_type="text/csv"), 413, "payload_too_large")
    assert not Coupon.objects.exists()


def test_an_import_needs_the_offers_scope(make_client, merchant, offer):
    reader = make_client(merchant=merchant, scopes=["read"])
    assert_error(
        reader.post(f"/api/v1/offers/{offer.id}/codes/import", b"X", content_type="text/csv"),
        403,
        "forbidden",
    )


def test_a_failed_import_job_lists_its_rejected_rows(api, offer):
    job = Job.objects.create(kind=Job.Kind.IMPORT, offer=offer, total=2)
    rejected = [{"row": 2, "code": "A\u00e9", "reason": "bad_characters", "message": "Only ASCII letters."}]
    jobs.job_fail(job_id=job.id, error="1 row was refused; nothing was imported.", details=rejected)
    body = api.get(f"/api/v1/jobs/{job.id}/").json()
    assert body["state"] == "failed" and body["rows"] == rejected
