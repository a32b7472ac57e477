"""CSV export of an offer's codes (streamed, constant memory) and import of a merchant's own codes (all or nothing)."""

import csv
import io
import re
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from itertools import islice
from typing import BinaryIO

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, CharField, F, FilteredRelation, Func, Q, Value, When
from django.db.models.functions import Concat, Left
from django.db.models.lookups import In
from django.utils import timezone

from coupons import bulk, jobs, services
from coupons.calendar import in_calendar
from coupons.codes import CODE_MAX_LENGTH
from coupons.errors import ApplicationError, invalid
from coupons.models import Coupon, CouponStatus, Job, JobChunk, MemberProfile, Offer

# --- export -------------------------------------------------------------------------------------

EXPORT_COLUMNS = ("code", "member_id", "member_no", "status", "issued_at", "expires_at", "times_redeemed")
EXPORT_BLOCK_ROWS = 5000
BOM = "\ufeff".encode()


def coupons_csv_filename(offer: Offer) -> str:
    return f"offer-{offer.id}-codes.csv"


def coupons_csv_stream(*, offer: Offer, bom: bool = False) -> Iterator[bytes]:
    """Every code of the offer as UTF-8 CSV (RFC 4180, header first), in blocks of bytes for a streamed response.

    Rows come from a server-side cursor (a named cursor on PostgreSQL), so memory stays flat however many
    codes there are. `status` is what a shopper would see now: an active code past its expiry reads expired.
    Times are ISO 8601 in UTC with microseconds (2025-12-31T13:00:00.000000Z). `bom` starts the file with a
    UTF-8 byte order mark so Excel opens it as UTF-8.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    yield (BOM if bom else b"") + out.getvalue().encode()
    postgres = connection.vendor == "postgresql"
    rows = _export_rows(offer, formatted_by_database=postgres).iterator(chunk_size=EXPORT_BLOCK_ROWS)
    # On PostgreSQL a transaction keeps the named cursor from being materialised (WITH HOLD) before the first
    # row; SQLite reads in chunks without one, and an IMMEDIATE transaction there would block every writer.
    with transaction.atomic() if postgres else nullcontext():
        while block := list(islice(rows, EXPORT_BLOCK_ROWS)):
            out.seek(0)
            out.truncate()
            writer.writerows(block if postgres else map(_times_formatted, block))
            yield out.getvalue().encode()


def _export_rows(offer: Offer, *, formatted_by_database: bool):
    """The export's columns in id order; PostgreSQL formats the times itself, sparing Python 2 million dates."""
    expired = Q(status=CouponStatus.ACTIVE, expires_at__isnull=False, expires_at__lte=timezone.now())
    shown = Case(
        When(expired, then=Value(CouponStatus.EXPIRED)), default=F("status"), output_field=CharField()
    )
    times = (
        (_IsoUtc("issued_at"), _IsoUtc("expires_at"))
        if formatted_by_database
        else ("issued_at", "expires_at")
    )
    # The member number is the offer's merchant's own; another owner's profile of the member never joins.
    profile = FilteredRelation(
        "member__profiles", condition=Q(member__profiles__merchant_id=offer.merchant_id)
    )
    return (
        Coupon.objects.filter(offer_id=offer.pk)
        .annotate(profile=profile)
        .order_by("id")
        .values_list(
            _formula_safe("code"),
            "member_id",
            _formula_safe("profile__member_no"),
            shown,
            *times,
            "times_redeemed",
        )
    )


# Cells a spreadsheet would run as a formula (OWASP's CSV injection list). Codes (vanity codes, prefixes,
# imported codes) and member numbers carry text an owner chose; the other columns are numbers, dates and
# statuses.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _formula_safe(column: str) -> Case:
    """The column's text behind a ' when it starts like a formula; the database does it, so the streamed
    export spends no Python per row."""
    return Case(
        When(In(Left(column, 1), FORMULA_STARTS), then=Concat(Value("'"), column)),
        default=F(column),
        output_field=CharField(),
    )


class _IsoUtc(Func):
    """A timestamp as ISO 8601 text in UTC with microseconds, formatted by PostgreSQL."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = CharField()


def _times_formatted(row: tuple) -> tuple:
    code, member_id, member_no, status, issued_at, expires_at, times = row
    return code, member_id, member_no, status, _iso(issued_at), _iso(expires_at), times


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value else None


# --- import -------------------------------------------------------------------------------------

CODE_RE = re.compile(r"[A-Za-z0-9_-]+")
HEADER_NAMES = {
    "code": {"code", "codes", "coupon", "coupon_code", "coupon code", "voucher", "voucher_code", "hash"},
    "member_id": {"member_id", "member id", "memberid", "member"},
    "expires_at": {"expires_at", "expires", "expiry", "expiry_date", "expiry date", "expiration_date",
                   "couponexpirydate"},
}  # fmt: skip
ERRORS_LISTED = 1000
REASONS = {
    "empty": "The row has no code.",
    "too_long": f"The code is longer than {CODE_MAX_LENGTH} characters.",
    "bad_characters": "A code may hold only ASCII letters, digits, '-' and '_'.",
    "duplicate_in_file": "The code appears more than once in the file.",
    # One reason whoever holds the code: the answer must not tell another owner's codes from this one's.
    "unavailable": "The code cannot be used; choose another.",
    "bad_member": "The member id is not a whole number.",
    "unknown_member": "No member has this id.",
    "bad_date": "The expiry is not an ISO 8601 date or date and time (e.g. 2025-12-31 or 2025-12-31T23:59:00+11:00).",
    "expiry_in_past": "The expiry is in the past.",
    "too_many_columns": "Without a header a row holds at most a code, a member id and an expiry.",
}


@dataclass
class ImportResult:
    """An import done in the request."""

    imported: int

    def as_dict(self) -> dict:
        return {"imported": self.imported}


class ImportRejected(ApplicationError):
    """Rows of an upload that are not valid, every one of them with its reason; nothing was imported.

    `others_codes` counts the rows refused because another merchant's offer holds the code: never shown,
    each one counts against the unknown-code limit like a guessed code.
    """

    def __init__(self, rows: list[dict], others_codes: int = 0):
        listed = "" if len(rows) <= ERRORS_LISTED else f" (the first {ERRORS_LISTED} are listed)"
        super().__init__(
            "invalid_request",
            f"{len(rows)} row{'s' if len(rows) != 1 else ''} of the file {'are' if len(rows) != 1 else 'is'} "
            f"not valid{listed}; nothing was imported.",
            fields={"file": ["invalid_rows"]},
        )
        self.rows = rows[:ERRORS_LISTED]
        self.others_codes = others_codes

    def as_body(self) -> dict:
        body = super().as_body()
        body["error"]["rows"] = self.rows
        return body


@dataclass
class _Parsed:
    """The file's rows as columns, with the file row number of each (1 = the first line)."""

    line_numbers: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    member_cells: list[str] = field(default_factory=list)
    expiry_cells: list[str] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def codes_import(*, offer: Offer, file: bytes | BinaryIO, filename: str = "") -> ImportResult | Job:
    """Import the merchant's own codes from a CSV file: all or nothing.

    The file is UTF-8, UTF-16 or Windows-1252 (see _decode), separated by commas, semicolons or tabs, one code a
    row, an optional header, and optional columns member id and expiry (ISO 8601; a date means the end of that day in the offer's site time zone).
    Every row is checked before anything is written; the rejected rows come back together as ImportRejected
    (400, `error.rows` = [{row, code, reason, message}]). Files up to CSV_IMPORT_INLINE_MAX_BYTES and
    CSV_IMPORT_INLINE_MAX_ROWS are imported in the request (ImportResult); larger ones return a Job that
    imports them in one transaction on the cluster (a failed job lists the rows in job.params["errors"]).
    """
    return codes_import_prepare(offer=offer, file=file, filename=filename)()


def codes_import_prepare(
    *, offer: Offer, file: bytes | BinaryIO, filename: str = ""
) -> Callable[[], ImportResult | Job]:
    """codes_import in two steps: read and check the file now, before any transaction (on SQLite, the write
    lock), and return the writing (the codes, or a large file's job) for the caller's transaction."""
    data = _read_limited(file)
    text = _decode(data)
    rows = _count_rows(text)
    if not rows:
        raise invalid("The file holds no codes.", file="empty")
    if len(data) > settings.CSV_IMPORT_INLINE_MAX_BYTES or rows > settings.CSV_IMPORT_INLINE_MAX_ROWS:
        params = {"filename": filename[:200], "bytes": len(data)}
        return partial(jobs.job_import_create, offer=offer, payload=data, rows=rows, params=params)
    offer = Offer.objects.select_related("site").get(pk=offer.pk)
    insert = _checked_insert(offer, None, text)
    return lambda: ImportResult(imported=insert())


def codes_import_chunk_prepare(*, job: Job, chunk: JobChunk) -> Callable[[], int]:
    """The job side of a large import: validate the stored file in full, outside any transaction, and return
    the insert of every row, to run in the chunk's transaction."""
    return _checked_insert(job.offer, job, _decode(bytes(chunk.payload)))


def _checked_insert(offer: Offer, job: Job | None, text: str) -> Callable[[], int]:
    """Check every row now; return the insert of them all, all or nothing (a code another upload took
    since the check fails it whole, as bulk.coupons_insert_given says)."""
    rows, issued_at = _validated(offer, _parse(text))

    def insert() -> int:
        with transaction.atomic(), jobs.progress_publisher(job) if job else nullcontext(None) as publish:
            return bulk.coupons_insert_given(
                offer=offer, job=job, rows=rows, issued_at=issued_at, on_progress=publish
            )

    return insert


def _read_limited(file: bytes | BinaryIO) -> bytes:
    limit = settings.CSV_IMPORT_MAX_BYTES
    data = file if isinstance(file, bytes | bytearray) else file.read(limit + 1)
    if len(data) > limit:
        raise ApplicationError(
            "payload_too_large",
            f"The file is larger than {limit // (1024 * 1024)} MB; split it into several uploads.",
            fields={"file": ["too_large"]},
        )
    return bytes(data)


ACCEPTED_ENCODINGS = "UTF-8, Windows-1252 or UTF-16 (with or without a byte order mark)"
_UNSUPPORTED_HINT = (
    f"Files are read as {ACCEPTED_ENCODINGS}. In Excel, save as 'CSV UTF-8 (comma delimited)', "
    "'CSV (comma delimited)' or 'Unicode text' and upload it again."
)


def _decode(data: bytes) -> str:
    """The file's text, as Excel saves it: UTF-8 (BOM or not), UTF-16 (by its BOM, or the zero bytes of ASCII text
    without one: "Unicode text"), or else Windows-1252 (the "CSV" of a Western Excel). Anything else is refused
    naming the encodings accepted."""
    if data.startswith(b"PK\x03\x04"):
        raise _unsupported("The file is an Excel workbook or another zip archive, not CSV text.")
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise _unsupported("The file is UTF-32.")
    utf16 = _utf16_encoding(data)
    for encoding in (utf16,) if utf16 else ("utf-8-sig", "cp1252"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError as error:
            failure = error
    else:
        where = failure.start
        raise _unsupported(
            f"Byte 0x{data[where]:02X} at offset {where} is not {utf16 or 'Windows-1252'} text."
        )
    # A NUL in a code is that row's error; in the very first line it means the file is not text at all (UTF-32
    # without a BOM, a binary file), which would otherwise come back as a wall of refused rows.
    if "\x00" in text.lstrip("\r\n").split("\n", 1)[0]:
        raise _unsupported(
            "The first line holds NUL characters: the file is not text in any of these encodings."
        )
    return text


def _utf16_encoding(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"  # the BOM says which byte order, and is dropped
    # Without a BOM: codes and headers are ASCII, so every other byte of the first characters is zero.
    if len(data) >= 4 and data[1:4:2] == b"\x00\x00" and data[0] and data[2]:
        return "utf-16-le"
    if len(data) >= 4 and data[0:4:2] == b"\x00\x00" and data[1] and data[3]:
        return "utf-16-be"
    return None


def _unsupported(reason: str) -> ApplicationError:
    return invalid(f"{reason} {_UNSUPPORTED_HINT}", file="unsupported_encoding")


DELIMITERS = (",", ";", "\t")


def _reader(text: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV rows with their file line numbers; commas, the semicolons of a European Excel or the tabs
    of its "Unicode text", whichever the first line uses most (no code, id or date holds any of them)."""
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count)  # ties, and a single column, keep the comma
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                yield reader.line_num, cells
    except csv.Error as error:
        raise invalid(f"Line {reader.line_num} is not valid CSV: {error}.", file="not_csv") from None


def _count_rows(text: str) -> int:
    rows = _reader(text)
    first = next(rows, None)
    if first is None:
        return 0
    return sum(1 for _ in rows) + (0 if _header_columns(first[1]) else 1)


def _header_columns(cells: list[str]) -> dict[str, int] | None:
    """Column positions named by a header row, or None when the first row is data."""
    names = [cell.strip().lower() for cell in cells]
    found = {key: names.index(n) for key, known in HEADER_NAMES.items() for n in names if n in known}
    if not found:
        return None
    if "code" not in found:
        raise invalid("The header names no code column (call it 'code').", file="no_code_column")
    return found


def _parse(text: str) -> _Parsed:
    parsed = _Parsed()
    rows = _reader(text)
    first = next(rows, None)
    if first is None:
        raise invalid("The file holds no codes.", file="empty")
    header = _header_columns(first[1])
    positions = header or {"code": 0, "member_id": 1, "expires_at": 2}
    if header is None:
        rows = iter([first, *rows])
    code_at, member_at, expiry_at = (positions.get(k, -1) for k in ("code", "member_id", "expires_at"))
    for line, cells in rows:
        code = _cell(cells, code_at)
        if header is None and len(cells) > 3 and any(c.strip() for c in cells[3:]):
            parsed.errors.append(_row_error(line, code, "too_many_columns"))
        parsed.line_numbers.append(line)
        parsed.codes.append(code)
        parsed.member_cells.append(_cell(cells, member_at))
        parsed.expiry_cells.append(_cell(cells, expiry_at))
    return parsed


def _cell(cells: list[str], at: int) -> str:
    return cells[at].strip() if 0 <= at < len(cells) else ""


def _row_error(line: int, code: str, reason: str, message: str | None = None) -> dict:
    return {"row": line, "code": code[:100], "reason": reason, "message": message or REASONS[reason]}


def _validated(offer: Offer, parsed: _Parsed) -> tuple[bulk.NewCoupons, datetime | None]:
    errors = parsed.errors
    others_codes = _codes_check(offer, parsed, errors)
    member_ids = _members_check(offer, parsed, errors)
    expiries = _expiries_check(offer, parsed, errors)
    if errors:
        raise ImportRejected(sorted(errors, key=lambda e: e["row"]), others_codes)
    return _rows_for_insert(offer, parsed.codes, member_ids, expiries)


def _codes_check(offer: Offer, parsed: _Parsed, errors: list[dict]) -> int:
    """Refuse rows whose code is not valid or taken; returns how many other merchants' offers hold."""
    first_seen: dict[str, int] = {}
    fine: list[str] = []
    for line, code in zip(parsed.line_numbers, parsed.codes, strict=True):
        if not code:
            errors.append(_row_error(line, code, "empty"))
        elif len(code) > CODE_MAX_LENGTH:
            errors.append(_row_error(line, code, "too_long"))
        elif not CODE_RE.fullmatch(code) or not code.isascii():
            errors.append(_row_error(line, code, "bad_characters"))
        elif code in first_seen:
            errors.append(
                _row_error(
                    line, code, "duplicate_in_file", f"The code already appears on row {first_seen[code]}."
                )
            )
        else:
            first_seen[code] = line
            fine.append(code)
    taken = sorted(bulk.codes_taken(fine))
    for code in taken:
        errors.append(_row_error(first_seen[code], code, "unavailable"))
    return bulk.codes_of_other_merchants(taken, offer.merchant_id) if taken else 0


def _members_check(offer: Offer, parsed: _Parsed, errors: list[dict]) -> list[int | None] | None:
    if not any(parsed.member_cells):
        return None
    ids: list[int | None] = []
    for line, code, cell in zip(parsed.line_numbers, parsed.codes, parsed.member_cells, strict=True):
        if cell and not (cell.isascii() and cell.isdigit() and 0 < int(cell) < 2**63):
            errors.append(_row_error(line, code, "bad_member"))
            cell = ""
        ids.append(int(cell) if cell else None)
    wanted = {i for i in ids if i is not None}
    # Codes are the merchant's to make: only members it told the platform about are known.
    known = (
        set(
            MemberProfile.objects.filter(merchant_id=offer.merchant_id, member_id__in=wanted).values_list(
                "member_id", flat=True
            )
        )
        if wanted
        else set()
    )
    for line, code, member_id in zip(parsed.line_numbers, parsed.codes, ids, strict=True):
        if member_id is not None and member_id not in known:
            errors.append(_row_error(line, code, "unknown_member"))
    return ids


def _expiries_check(offer: Offer, parsed: _Parsed, errors: list[dict]) -> list[datetime | None] | None:
    if not any(parsed.expiry_cells):
        return None
    zone = zoneinfo.ZoneInfo(offer.site.timezone)
    now = timezone.now()
    expiries: list[datetime | None] = []
    for line, code, cell in zip(parsed.line_numbers, parsed.codes, parsed.expiry_cells, strict=True):
        expiry = _expiry_parse(cell, zone) if cell else None
        if cell and expiry is None:
            errors.append(_row_error(line, code, "bad_date"))
        elif expiry is not None and expiry <= now:
            errors.append(_row_error(line, code, "expiry_in_past"))
        expiries.append(expiry)
    return expiries


def _expiry_parse(cell: str, zone: zoneinfo.ZoneInfo) -> datetime | None:
    """An ISO 8601 expiry in UTC; a bare date lasts to the end of that day, naive times are the site's."""
    try:
        if len(cell) == 10:
            day = date.fromisoformat(cell)
            moment = datetime.combine(day + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
        else:
            value = datetime.fromisoformat(cell)
            moment = (value if value.tzinfo else value.replace(tzinfo=zone)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a date at the calendar's end moved by its offset
        return None
    return moment if in_calendar(moment) else None


def _rows_for_insert(
    offer: Offer,
    codes: list[str],
    member_ids: list[int | None] | None,
    expiries: list[datetime | None] | None,
) -> tuple[bulk.NewCoupons, datetime | None]:
    """The rows to store and the issue time they share; per-row times and a mystery offer's drawn discounts."""
    now = timezone.now()
    pooled = offer.issue_from_pool
    # A pool code is issued when a shopper takes it, unless the file already hands it to a member.
    issued = [now if (not pooled or (member_ids and member_ids[i])) else None for i in range(len(codes))]
    rows = bulk.NewCoupons(codes=codes, member_ids=member_ids)
    if len(set(issued)) > 1:
        rows.issued_at = issued
    if rows.issued_at or (expiries and any(expiries)):
        rows.expires_at = [
            (expiries[i] if expiries and expiries[i] else services.coupon_expiry(offer, issued[i]))
            for i in range(len(codes))
        ]
    if offer.coupon_type == "mystery":
        draws = [services.mystery_draw(offer) for _ in codes]
        rows.discount_types = [d[0] for d in draws]
        rows.discount_values = [d[1] for d in draws]
    return rows, issued[0]


# An import job's chunks are read and checked here, before their transaction, then written.
jobs.CHUNK_PREPARE[Job.Kind.IMPORT] = lambda job, chunk: codes_import_chunk_prepare(job=job, chunk=chunk)
