"""CSV export (streamed, what the database holds) and import of own codes (all or nothing, every bad row named)."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from django_q.conf import Conf

from coupons import csv_io, events, jobs, services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Job
from tests import factories
from webhooks.models import Event


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    return lambda: django_capture_on_commit_callbacks(execute=True)


def named(data: bytes) -> io.BytesIO:
    upload = io.BytesIO(data)
    upload.name = "codes.csv"
    return upload


def exported(offer, bom=False) -> bytes:
    return b"".join(csv_io.coupons_csv_stream(offer=offer, bom=bom))


def rows_of(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def import_(offer, text: str | bytes):
    return csv_io.codes_import(offer=offer, file=text.encode() if isinstance(text, str) else text)


def rejected(offer, text: str | bytes) -> list[tuple[int, str, str]]:
    with pytest.raises(csv_io.ImportRejected) as error:
        import_(offer, text)
    body = error.value.as_body()["error"]
    assert body["code"] == "invalid_request" and error.value.status == 400
    return [(row["row"], row["code"], row["reason"]) for row in body["rows"]]


# --- export -------------------------------------------------------------------------------------


def test_the_export_lists_every_code_as_the_database_holds_it(offer):
    member = factories.MemberFactory(merchant=offer.merchant, member_no="GATA0006417")
    active, used, lapsed = services.coupons_create(offer=offer, count=3)
    given = services.coupons_create(offer=offer, member_ids=[member.id])[0]
    Coupon.objects.filter(pk=used.pk).update(times_redeemed=1, status="redeemed")
    Coupon.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    data = exported(offer)

    assert data.startswith(b"code,member_id,member_no,status,issued_at,expires_at,times_redeemed\r\n")
    rows = {row["code"]: row for row in rows_of(data)}
    assert len(rows) == 4
    assert rows[used.code]["status"] == "redeemed" and rows[used.code]["times_redeemed"] == "1"
    assert rows[lapsed.code]["status"] == "expired"  # what a shopper sees, before the expiry sweep runs
    assert rows[given.code]["member_id"] == str(member.id) and rows[given.code]["member_no"] == "GATA0006417"
    assert rows[active.code] == {
        "code": active.code, "member_id": "", "member_no": "", "status": "active", "times_redeemed": "0",
        "issued_at": active.issued_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "expires_at": offer.finish_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }  # fmt: skip


def test_the_export_streams_in_blocks_with_an_optional_bom(offer, monkeypatch, run_on_commit):
    monkeypatch.setattr(csv_io, "EXPORT_BLOCK_ROWS", 100)
    with run_on_commit():
        jobs.job_generate_start(offer=offer, count=450)
    blocks = list(csv_io.coupons_csv_stream(offer=offer, bom=True))

    assert (
        blocks[0] == csv_io.BOM + b"code,member_id,member_no,status,issued_at,expires_at,times_redeemed\r\n"
    )
    assert [block.count(b"\r\n") for block in blocks[1:]] == [100, 100, 100, 100, 50]
    codes = [row["code"] for row in rows_of(b"".join(blocks))]
    assert codes == list(Coupon.objects.filter(offer=offer).order_by("id").values_list("code", flat=True))
    assert (
        not exported(factories.OfferFactory(site=offer.site)).count(b"\r\n") - 1
    )  # an empty offer: header only


def test_an_export_imported_into_another_offer_gives_the_same_codes(offer, site, run_on_commit):
    members = factories.MemberFactory.create_batch(3, merchant=offer.merchant)
    with run_on_commit():
        jobs.job_generate_start(offer=offer, count=120)
        jobs.job_generate_start(offer=offer, member_ids=[m.id for m in members])
    before = rows_of(exported(offer))
    Coupon.objects.filter(offer=offer).delete()  # codes are unique across offers: free them first

    target = factories.OfferFactory(site=site)
    assert import_(target, exported_bytes := "".join(_csv_lines(before))).imported == 123
    after = rows_of(exported(target))

    keep = ("code", "member_id", "member_no", "status", "expires_at", "times_redeemed")
    assert sorted(tuple(r[k] for k in keep) for r in after) == sorted(
        tuple(r[k] for k in keep) for r in before
    )
    assert exported_bytes.startswith("code,member_id,member_no,")


def _csv_lines(rows: list[dict]):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(csv_io.EXPORT_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    yield out.getvalue()


def test_the_admin_exports_one_offer_as_csv_for_excel(admin_client, offer, site):
    services.coupons_create(offer=offer, count=2)
    response = admin_client.post(
        reverse("admin:coupons_offer_changelist"),
        {"action": "export_codes_csv", "_selected_action": [offer.pk]},
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f'filename="offer-{offer.pk}-codes.csv"' in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert body.startswith(csv_io.BOM + b"code,") and len(rows_of(body)) == 2

    two = admin_client.post(
        reverse("admin:coupons_offer_changelist"),
        {"action": "export_codes_csv", "_selected_action": [offer.pk, factories.OfferFactory(site=site).pk]},
        follow=True,
    )
    assert b"Select exactly one offer" in two.content


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(offer, start):
    formula = f'{start}HYPERLINK("https://evil.example")'
    member = factories.MemberFactory(merchant=offer.merchant, member_no=formula[:64])
    factories.CouponFactory(offer=offer, code=f"{start}1+1", member=member)
    factories.CouponFactory(offer=offer, code="PLAIN-CODE-1")
    rows = rows_of(exported(offer))
    assert [(r["code"], r["member_no"]) for r in rows] == [
        (f"'{start}1+1", f"'{formula}"),
        ("PLAIN-CODE-1", ""),
    ]


# --- import -------------------------------------------------------------------------------------


def test_an_import_stores_each_row_with_its_member_and_expiry_and_announces_it(offer, site):
    offer.max_redemptions_per_code = 3
    offer.usage_limit_type = "multiple"
    offer.save()
    member = factories.MemberFactory(merchant=offer.merchant)
    text = (
        "code,member_id,expiry\r\n"
        "SPRING-0001,,\r\n"
        f"SPRING-0002,{member.id},2031-03-31\r\n"
        "spring_0003,,2031-03-31T23:59:00+11:00\r\n"
        "\r\n"
        "SPRING-0004,,2031-01-01T09:00\r\n"
    )
    assert import_(offer, text).as_dict() == {"imported": 4}

    stored = {c.code: c for c in Coupon.objects.filter(offer=offer).select_related("member")}
    assert set(stored) == {"SPRING-0001", "SPRING-0002", "spring_0003", "SPRING-0004"}
    assert {c.max_redemptions for c in stored.values()} == {3}
    assert stored["SPRING-0001"].expires_at == offer.finish_date  # no expiry column value: the offer's
    # A date lasts to the end of that day in the site's zone (Sydney: UTC+11 in March).
    assert stored["SPRING-0002"].expires_at == datetime(2031, 3, 31, 13, 0, tzinfo=UTC)
    assert stored["SPRING-0002"].member == member and stored["SPRING-0002"].issued_at
    assert stored["spring_0003"].expires_at == datetime(2031, 3, 31, 12, 59, tzinfo=UTC)
    assert stored["SPRING-0004"].expires_at == datetime(2030, 12, 31, 22, 0, tzinfo=UTC)  # naive: the site's

    created = Event.objects.get(type="coupon.created", offer=offer)
    assert sorted(c["code"] for c in created.data["coupons"]) == sorted(stored)
    listed = {c["code"]: c for c in created.data["coupons"]}
    assert listed["SPRING-0002"] == events.coupon_snapshot(stored["SPRING-0002"], member.profiles.get())
    assert Event.objects.filter(type="coupon.issued", data__coupon__code="SPRING-0002").count() == 1


def test_an_import_without_a_header_takes_code_member_and_expiry_in_that_order(offer, member):
    text = f"\ufeffALPHA1\nBETA2,{member.id}\nGAMMA3,,2031-05-01\n"
    assert import_(offer, text.encode()).imported == 3
    assert Coupon.objects.get(code="BETA2").member == member
    assert Coupon.objects.get(code="ALPHA1").code == "ALPHA1"  # the BOM is not part of the first code


def test_an_import_is_all_or_nothing_and_names_every_bad_row(offer, member):
    Coupon.objects.create(offer=factories.OfferFactory(site=offer.site), code="TAKEN1")
    text = (
        "code,member_id,expires_at\n"
        "GOOD1,,\n"  # 2
        "GOOD1,,\n"  # 3 duplicate in the file
        "TAKEN1,,\n"  # 4 exists
        "BAD CODE,,\n"  # 5 space
        "EMOJI\U0001f600,,\n"  # 6
        "NUL\x00BYTE,,\n"  # 7
        f"{'X' * 65},,\n"  # 8 too long
        "GOOD2,999999999,\n"  # 9 unknown member
        "GOOD3,abc,\n"  # 10 not a member id
        "GOOD4,,31/12/2031\n"  # 11 not ISO 8601
        "GOOD5,,2001-01-01\n"  # 12 past
        ",,2031-01-01\n"  # 13 no code
        f"GOOD6,{member.id},2031-01-01\n"  # 14 fine
    )
    assert rejected(offer, text) == [
        (3, "GOOD1", "duplicate_in_file"),
        (4, "TAKEN1", "unavailable"),
        (5, "BAD CODE", "bad_characters"),
        (6, "EMOJI\U0001f600", "bad_characters"),
        (7, "NUL\x00BYTE", "bad_characters"),
        (8, "X" * 65, "too_long"),
        (9, "GOOD2", "unknown_member"),
        (10, "GOOD3", "bad_member"),
        (11, "GOOD4", "bad_date"),
        (12, "GOOD5", "expiry_in_past"),
        (13, "", "empty"),
    ]
    assert not Coupon.objects.filter(offer=offer).exists()
    assert not Event.objects.filter(offer=offer).exists()


# The same sheet as each of Excel's "Save as" choices writes it: CRLF lines, a note column with text outside ASCII.
SHEET = [["Code", "Member ID", "Expiry", "Note"], ["XL-0001", "{member}", "2031-06-30", "Café crème – 5€ off"],
         ["XL-0002", "", "", "naïve"]]  # fmt: skip


def excel_saved(encoding: str, delimiter: str, bom: bytes = b"", member_id: int = 0) -> bytes:
    lines = [delimiter.join(cell.format(member=member_id) for cell in row) for row in SHEET]
    return bom + "".join(line + "\r\n" for line in lines).encode(encoding)


EXCEL_FILES = {
    "CSV UTF-8 (comma delimited)": ("utf-8", ",", "\ufeff".encode()),
    "CSV (comma delimited), Windows": ("cp1252", ",", b""),
    "CSV (semicolon), a European Windows": ("cp1252", ";", b""),
    "Unicode text (UTF-16 LE with BOM, tabs)": ("utf-16-le", "\t", b"\xff\xfe"),
    "UTF-16 LE without BOM, tabs": ("utf-16-le", "\t", b""),
    "UTF-16 BE with BOM, commas": ("utf-16-be", ",", b"\xfe\xff"),
    "UTF-16 BE without BOM, semicolons": ("utf-16-be", ";", b""),
    "UTF-8 without BOM, tabs": ("utf-8", "\t", b""),
}


@pytest.mark.parametrize("saved_as", list(EXCEL_FILES))
def test_a_file_as_excel_saves_it_is_imported_in_every_encoding_and_separator(offer, member, saved_as):
    encoding, delimiter, bom = EXCEL_FILES[saved_as]
    data = excel_saved(encoding, delimiter, bom, member.id)
    assert import_(offer, data).imported == 2
    first, second = Coupon.objects.filter(offer=offer).order_by("code")
    assert (first.code, first.member, second.code, second.member) == ("XL-0001", member, "XL-0002", None)
    assert first.expires_at.date().isoformat() in (
        "2031-06-30",
        "2031-07-01",
    )  # end of the day in the site's zone


def test_a_windows_1252_code_outside_ascii_is_refused_as_a_code_not_as_an_encoding(offer):
    assert rejected(offer, "code\r\nOK1\r\nCAFÉ1\r\n".encode("cp1252")) == [(3, "CAFÉ1", "bad_characters")]


@pytest.mark.parametrize(
    "data, says",
    [
        ("code\nOK1\n".encode("utf-32"), "UTF-32"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40, "Excel workbook"),
        ("code\nOK1\n".encode("utf-32-le"), "NUL"),  # UTF-32 without its BOM
        (b"code\nOK1\n\x81\n", "Byte 0x81"),  # undefined in Windows-1252, and not UTF-8
        ("code\nOK1\n".encode("utf-16-le") + b"\x00", "offset"),  # odd length: cut in a character
        (b"\xff\xfe" + "code\nOK".encode("utf-16-le") + b"\x00\xd8" + "1\n".encode("utf-16-le"), "offset"),
    ],
    ids=[
        "utf-32",
        "xlsx",
        "utf-32-without-bom",
        "undefined-cp1252-byte",
        "truncated-utf-16",
        "lone-surrogate-utf-16",
    ],
)
def test_a_file_in_another_encoding_is_refused_naming_the_encodings_accepted(offer, data, says):
    with pytest.raises(ApplicationError) as error:
        import_(offer, data)
    assert error.value.status == 400 and error.value.fields == {"file": ["unsupported_encoding"]}
    assert says in error.value.message
    assert "UTF-8, Windows-1252 or UTF-16" in error.value.message and "Unicode text" in error.value.message
    assert not Coupon.objects.exists()


@pytest.mark.parametrize(
    "text, field",
    [
        ("", "empty"),
        ("\n\n  \n", "empty"),
        ("code\n", "empty"),
        ("member_id,expiry\n5,2031-01-01\n", "no_code_column"),
    ],
)
def test_a_file_with_no_codes_is_refused(offer, text, field):
    with pytest.raises(ApplicationError) as error:
        import_(offer, text)
    assert error.value.status == 400 and error.value.fields == {"file": [field]}


def test_a_semicolon_separated_file_from_a_european_excel_is_read_too(offer, member):
    assert (
        import_(offer, f"code;member_id;expiry\r\nEURO1;{member.id};2031-06-30\r\nEURO2;;\r\n").imported == 2
    )
    assert Coupon.objects.get(code="EURO1").member == member


def test_a_file_that_is_not_csv_is_refused_with_its_line(offer):
    with pytest.raises(ApplicationError) as error:
        import_(offer, "code\nOK1\n" + "X" * 200_000 + "\n")  # one field past the CSV reader's limit
    assert error.value.status == 400 and error.value.fields == {"file": ["not_csv"]}
    assert "Line 3" in error.value.message


def test_a_file_over_the_limit_is_refused_before_it_is_read_whole(offer, settings):
    settings.CSV_IMPORT_MAX_BYTES = 1000
    with pytest.raises(ApplicationError) as error:
        csv_io.codes_import(offer=offer, file=io.BytesIO(b"CODE1234\n" * 200))
    assert error.value.status == 413 and error.value.code == "payload_too_large"


def test_imported_codes_of_a_mystery_offer_get_a_drawn_discount(site):
    offer = factories.OfferFactory(
        site=site, coupon_type="mystery", discount_value=None,
        mystery_discounts=[{"coupon_type": "fixedAmount", "discount_value": "7.50", "weight": 1}],
    )  # fmt: skip
    import_(offer, "MYST1\nMYST2\n")
    assert set(Coupon.objects.filter(offer=offer).values_list("discount_type", "discount_value")) == {
        ("fixedAmount", Decimal("7.50"))
    }


def test_a_large_file_is_imported_by_a_job_with_every_row(offer, settings, run_on_commit):
    """A 10 MB export from another system (a notes column, ignored): a job imports it, all or nothing."""
    settings.JOB_CHUNK_SIZE = 10000  # the job stores the rows in slices and reports each one
    notes = "Autumn campaign, printed on the flyer; one code per household. " * 4
    rows = [f"LARGE-{i:08d},{notes}" for i in range(40_000)]
    data = ("code,notes\r\n" + "\r\n".join(rows) + "\r\n").encode()
    assert 10_000_000 < len(data) < settings.CSV_IMPORT_MAX_BYTES

    with run_on_commit():
        job = import_(offer, data)
        assert isinstance(job, Job) and job.kind == Job.Kind.IMPORT and job.total == 40_000

    job.refresh_from_db()
    assert (job.state, job.done, job.total) == (Job.State.SUCCEEDED, 40_000, 40_000)
    assert job.chunks.get().payload is not None and job.params["bytes"] == len(data)
    assert Coupon.objects.filter(offer=offer, job=job).count() == 40_000
    assert Event.objects.filter(type="coupon.created", offer=offer).count() == 80  # 500 codes a message


def test_a_large_file_with_a_bad_row_fails_its_job_and_lists_the_row(offer, settings, run_on_commit):
    settings.CSV_IMPORT_INLINE_MAX_ROWS = 10
    text = "\n".join(f"ROW{i}" for i in range(30)) + "\nBAD ROW\nROW5\n"
    with run_on_commit():
        job = import_(offer, text)
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.done == 0 and "2 rows of the file are not valid" in job.error
    assert [(e["row"], e["reason"]) for e in job.params["errors"]] == [
        (31, "bad_characters"),
        (32, "duplicate_in_file"),
    ]
    assert not Coupon.objects.filter(offer=offer).exists()


def test_the_admin_import_view_lists_refused_rows_and_imports_a_good_file(admin_client, offer):
    url = reverse("admin:coupons_offer_import_codes", args=[offer.pk])
    assert admin_client.get(url).status_code == 200

    bad = admin_client.post(url, {"file": named(b"OK1\nOK1\n")})
    assert (
        bad.status_code == 200 and b"already appears on row 1" in bad.content and not Coupon.objects.exists()
    )
    utf32 = admin_client.post(url, {"file": named("OK1\n".encode("utf-32"))})
    assert b"UTF-8, Windows-1252 or UTF-16" in utf32.content and not Coupon.objects.exists()
    unicode_text = admin_client.post(
        url, {"file": named("\ufeffcode\tnote\r\nUTF16A\tCafé\r\n".encode("utf-16-le"))}
    )
    assert unicode_text.status_code == 302 and Coupon.objects.get().code == "UTF16A"
    Coupon.objects.all().delete()

    good = admin_client.post(url, {"file": named(b"code\nADMIN1\nADMIN2\n")}, follow=True)
    assert b"2 codes imported." in good.content
    assert set(Coupon.objects.filter(offer=offer).values_list("code", flat=True)) == {"ADMIN1", "ADMIN2"}


def test_a_code_taken_between_the_check_and_the_insert_fails_the_whole_import(offer, monkeypatch):
    real = csv_io._validated

    def validated_then_taken(offer_, parsed):
        checked = real(offer_, parsed)
        # Another upload stores the file's last code after this one checked it.
        Coupon.objects.create(offer=factories.OfferFactory(site=offer.site), code=parsed.codes[-1])
        return checked

    monkeypatch.setattr(csv_io, "_validated", validated_then_taken)
    with pytest.raises(ApplicationError) as error:
        import_(offer, "RACE1\nRACE2\nRACE3\n")
    assert error.value.fields == {"file": ["codes_taken"]}
    assert not Coupon.objects.filter(offer=offer).exists() and not Event.objects.filter(offer=offer).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_long_import_publishes_its_progress_while_its_transaction_is_still_open(offer, is_postgres):
    from django.db import DEFAULT_DB_ALIAS, connections, transaction

    assert is_postgres  # SQLite has one writer at a time: there progress shows when the import commits

    job = Job.objects.create(kind=Job.Kind.IMPORT, offer=offer, total=30_000)
    onlooker = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with transaction.atomic(), jobs.progress_publisher(job) as publish:
            publish(10_000)
            with onlooker.cursor() as cursor:
                cursor.execute("SELECT done FROM coupons_job WHERE id = %s", [job.id])
                assert cursor.fetchone() == (10_000,)
    finally:
        onlooker.close()
