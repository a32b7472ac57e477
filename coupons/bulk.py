"""Bulk writes of new coupons with their coupon.created events: COPY on PostgreSQL, executemany on SQLite."""

import json
import secrets
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache, partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from coupons import events, services
from coupons.codes import CodeFormat
from coupons.errors import ApplicationError, invalid
from coupons.models import Coupon, Job, Member, MemberProfile, Offer
from coupons.selectors import member_profiles_for_offer
from webhooks.models import Event
from webhooks.outbox import deliveries_add
from webhooks.routing import subscriptions_matching

STAGE_TABLE = "coupon_stage"
# Per-row columns of the staging table; everything else about a new coupon is the same for the whole batch.
STAGE_COLUMNS = {
    "code": "varchar(64)",
    "uuid": "uuid",
    "member_id": "bigint",
    "issued_at": "timestamptz",
    "expires_at": "timestamptz",
    "discount_type": "varchar(20)",
    "discount_value": "numeric(12, 2)",
}
TOP_UP_ROUNDS = 20
LOOKUP_BATCH = 5000
UUID7_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
# Python's datetime.isoformat() of a UTC time, in SQL: microseconds only when there are some.
SQL_ISO = (
    "CASE WHEN {v} IS NULL THEN NULL ELSE to_char({v} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') "
    "|| CASE WHEN mod(date_part('microseconds', {v})::bigint, 1000000) <> 0 "
    "THEN to_char({v} AT TIME ZONE 'UTC', '.US') ELSE '' END || '+00:00' END"
)


@dataclass
class NewCoupons:
    """Coupons to insert, column by column (lists of plain values keep a million rows cheap)."""

    codes: list[str]
    member_ids: list[int | None] | None = None
    issued_at: list[datetime | None] | None = None
    expires_at: list[datetime | None] | None = None
    discount_types: list[str | None] | None = None
    discount_values: list[Decimal | None] | None = None

    def columns(self) -> dict[str, list]:
        given = {
            "code": self.codes,
            "member_id": self.member_ids,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "discount_type": self.discount_types,
            "discount_value": self.discount_values,
        }
        return {name: values for name, values in given.items() if values is not None}

    def take(self, positions: list[int]) -> "NewCoupons":
        pick = lambda values: None if values is None else [values[i] for i in positions]  # noqa: E731
        return NewCoupons(
            codes=pick(self.codes),
            member_ids=pick(self.member_ids),
            issued_at=pick(self.issued_at),
            expires_at=pick(self.expires_at),
            discount_types=pick(self.discount_types),
            discount_values=pick(self.discount_values),
        )


@dataclass
class Inserted:
    count: int = 0
    ids: list[int] = field(default_factory=list)
    member_ids: list[int | None] = field(default_factory=list)


def use_copy() -> bool:
    return connection.vendor == "postgresql"


# --- generation --------------------------------------------------------------------------------


def coupons_generate(
    *, offer: Offer, job: Job | None, count: int = 0, members: list[Member] | None = None, issued: bool = True
) -> int:
    """Make `count` fresh codes (or one per member) in the current transaction, with their events."""
    now = timezone.now()
    code_format = CodeFormat.for_offer(offer)
    wanted = len(members) if members is not None else count
    if wanted > code_format.capacity:
        # The start checked the code space; this catches a format narrowed while the job waited.
        raise invalid(
            f"This offer's code format allows only {code_format.capacity} codes.", count="exceeds_code_space"
        )
    member_ids = [m.id for m in members] if members is not None else None
    made, made_ids = 0, []
    for _ in range(TOP_UP_ROUNDS):
        missing = wanted - made if member_ids is None else len(member_ids)
        if missing <= 0:
            break
        rows = _random_rows(offer, code_format, missing, member_ids)
        inserted = _insert(
            offer, job, rows, issued_at=now if issued else None, now=now, want_ids=members is not None
        )
        made, made_ids = made + inserted.count, made_ids + inserted.ids
        if member_ids is not None:
            # Only the members whose code collided with one already taken need another draw.
            member_ids = list((Counter(member_ids) - Counter(inserted.member_ids)).elements())
    else:
        raise _no_unique_codes()
    if members is not None:
        _issued_events(offer, made_ids)
    return made


def _no_unique_codes() -> ApplicationError:
    return ApplicationError("invalid_request", "Could not draw enough unique codes; widen the code format.")


def _random_rows(
    offer: Offer, code_format: CodeFormat, count: int, member_ids: list[int] | None
) -> NewCoupons:
    codes = list(dict.fromkeys(code_format.generate(count)))  # a repeat within the draw is dropped here
    for _ in range(TOP_UP_ROUNDS):
        if len(codes) >= count:
            break
        codes = list(dict.fromkeys(codes + code_format.generate(count - len(codes))))
    else:
        raise _no_unique_codes()
    rows = NewCoupons(codes=codes, member_ids=member_ids)
    if offer.coupon_type == "mystery":
        draws = [services.mystery_draw(offer) for _ in codes]
        rows.discount_types = [d[0] for d in draws]
        rows.discount_values = [d[1] for d in draws]
    return rows


def _issued_events(offer: Offer, coupon_ids: list[int]) -> None:
    """coupon.issued for each code handed to a member, as webhooks.outbox.event_record writes it, in bulk:
    one write for the events and one look-up of the subscriptions for the whole batch."""
    if not coupon_ids:
        return
    now = timezone.now()
    issued = []
    coupons = list(Coupon.objects.filter(id__in=coupon_ids).select_related("member").order_by("id"))
    profiles = member_profiles_for_offer(offer, {c.member_id for c in coupons})
    for coupon in coupons:
        coupon.offer = offer
        data = events.coupon_event_data(coupon, profile=profiles.get(coupon.member_id))
        issued.append(Event(type="coupon.issued", offer=offer, data=data, created_at=now))
    if use_copy():
        _events_copy(issued)
    else:
        Event.objects.bulk_create(issued, batch_size=1000)
    subscription_ids = [s.id for s in subscriptions_matching(event_type="coupon.issued", offer=offer)]
    if not subscription_ids:
        return
    if use_copy():
        ids = dict(Event.objects.filter(uuid__in=[e.uuid for e in issued]).values_list("uuid", "id"))
        for event in issued:
            event.id = ids[event.uuid]
    for event in issued:
        deliveries_add(event, subscription_ids, now=now)


def _events_copy(new_events: list[Event]) -> None:
    """Events written with COPY: large JSON documents bound as query literals would be escaped in Python."""
    fields = [f for f in Event._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for event in new_events:
            copy.write_row([f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields])


# --- given codes (imports) ---------------------------------------------------------------------


def coupons_insert_given(
    *,
    offer: Offer,
    job: Job | None,
    rows: NewCoupons,
    issued_at: datetime | None,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Insert codes the user chose (validated), in slices reported to `on_progress`; a code another writer
    took since the validation fails the whole batch. `issued_at` applies to rows that carry no time of their own."""
    now = timezone.now()
    total = len(rows.codes)
    for start in range(0, total, settings.JOB_CHUNK_SIZE):
        piece = rows.take(list(range(start, min(start + settings.JOB_CHUNK_SIZE, total))))
        inserted = _insert(offer, job, piece, issued_at=issued_at, now=now, want_ids=bool(piece.member_ids))
        if inserted.count != len(piece.codes):
            raise _taken_meanwhile()
        _issued_events(offer, [i for i, m in zip(inserted.ids, inserted.member_ids, strict=True) if m])
        if on_progress:
            on_progress(start + len(piece.codes))
    return total


def _taken_meanwhile() -> ApplicationError:
    return ApplicationError(
        "invalid_request",
        "Some codes were taken by another upload while this one was being stored; nothing was imported.",
        fields={"file": ["codes_taken"]},
    )


# --- storing a batch ------------------------------------------------------------------------------


def _insert(
    offer: Offer,
    job: Job | None,
    rows: NewCoupons,
    *,
    issued_at: datetime | None,
    now: datetime,
    want_ids: bool,
) -> Inserted:
    """Insert the rows whose code is free, with their coupon.created messages, in the current transaction."""
    if use_copy():
        return _copy_insert(offer, job, rows, issued_at=issued_at, now=now, want_ids=want_ids)
    return _executemany_insert(offer, job, rows, issued_at=issued_at, now=now)


def _prototype(offer: Offer, job: Job | None, issued_at: datetime | None, now: datetime) -> Coupon:
    """What every coupon of the batch shares; per-row columns override it."""
    return Coupon(
        offer=offer, job=job, max_redemptions=offer.code_limit_per_coupon, issued_at=issued_at,
        expires_at=services.coupon_expiry(offer, issued_at), created_at=now, updated_at=now,
    )  # fmt: skip


class _NewCoupon:
    """A just-stored coupon for events.coupon_snapshot: its own per-row values, anything else the prototype's."""

    def __init__(self, prototype: Coupon, *, uuid_: uuid.UUID, **values) -> None:
        self.__dict__.update(values, uuid=uuid_)  # the staged uuid is hex text; the snapshot wants a UUID
        self._prototype = prototype

    def __getattr__(self, name: str):
        return getattr(self._prototype, name)


# --- SQLite: executemany under the write lock ------------------------------------------------------


def _executemany_insert(
    offer: Offer, job: Job | None, rows: NewCoupons, *, issued_at: datetime | None, now: datetime
) -> Inserted:
    """Skip codes already taken, insert the rest with one executemany, and announce them.

    The transaction holds SQLite's write lock from its start (transaction_mode IMMEDIATE), so no other
    writer can take a code, or an id, between the look-up, the insert and reading the new ids back.
    """
    taken = codes_taken(rows.codes)
    if taken:
        rows = rows.take([i for i, code in enumerate(rows.codes) if code not in taken])
    if not rows.codes:
        return Inserted()
    prototype = _prototype(offer, job, issued_at, now)
    uuids = uuid7_hex(len(rows.codes), now)
    per_row = rows.columns() | {"uuid": uuids}
    columns, params = _executemany_params(prototype, per_row)
    table = connection.ops.quote_name(Coupon._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
        (before,) = cursor.fetchone()
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})", params
        )
        cursor.execute(f"SELECT id FROM {table} WHERE id > %s ORDER BY id", [before])
        ids = [row[0] for row in cursor.fetchall()]
    members = Member.objects.in_bulk({m for m in rows.member_ids or () if m})
    stored = [
        _NewCoupon(
            prototype,
            **{name: values[i] for name, values in per_row.items()},
            id=id_,
            uuid_=uuid.UUID(hex=uuids[i]),
            member=members.get(rows.member_ids[i]) if rows.member_ids else None,
        )
        for i, id_ in enumerate(ids)
    ]
    events.record_coupons_created(offer, stored)
    return Inserted(count=len(ids), ids=ids, member_ids=rows.member_ids or [None] * len(ids))


def codes_taken(codes: list[str]) -> set[str]:
    """Which of these codes some coupon already holds (looked up in batches the database accepts)."""
    if use_copy():
        # One array parameter instead of thousands of bound values: PostgreSQL parses it in one go.
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT code FROM {Coupon._meta.db_table} WHERE code = ANY(%s)", [list(codes)])
            return {row[0] for row in cursor.fetchall()}
    taken: set[str] = set()
    for start in range(0, len(codes), LOOKUP_BATCH):
        taken.update(
            Coupon.objects.filter(code__in=codes[start : start + LOOKUP_BATCH]).values_list("code", flat=True)
        )
    return taken


def codes_of_other_merchants(codes: list[str], merchant_id: int) -> int:
    """How many of these codes other merchants' offers hold (for the unknown-code limit; never said which)."""
    return sum(
        Coupon.objects.filter(code__in=codes[start : start + LOOKUP_BATCH])
        .exclude(offer__merchant_id=merchant_id)
        .count()
        for start in range(0, len(codes), LOOKUP_BATCH)
    )


def _executemany_params(prototype: Coupon, per_row: dict[str, list]) -> tuple[list[str], list[tuple]]:
    """Column names, then one parameter tuple per row: the per-row values first, the shared ones after."""
    fields = [f for f in Coupon._meta.concrete_fields if not f.primary_key]
    varying = [f for f in fields if f.column in per_row]
    shared = [f for f in fields if f.column not in per_row]
    columns = [connection.ops.quote_name(f.column) for f in varying + shared]
    # Only dates and amounts need converting for the database; codes, ids and uuid hex go as they are.
    converted = [
        [f.get_db_prep_save(v, connection) for v in per_row[f.column]]
        if f.get_internal_type() in ("DateTimeField", "DecimalField")
        else per_row[f.column]
        for f in varying
    ]
    constants = tuple(f.get_db_prep_save(getattr(prototype, f.attname), connection) for f in shared)
    return columns, [(*row, *constants) for row in zip(*converted, strict=True)]


# --- PostgreSQL: COPY into a staging table, then one INSERT ... SELECT with the events -----------


def _copy_insert(
    offer: Offer,
    job: Job | None,
    rows: NewCoupons,
    *,
    issued_at: datetime | None,
    now: datetime,
    want_ids: bool,
) -> Inserted:
    """Stage rows with COPY, insert those whose code is free, and write coupon.created for them, all in SQL."""
    columns = rows.columns() | {"uuid": uuid7_hex(len(rows.codes), now)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} "
            f"({', '.join(f'{n} {t}' for n, t in STAGE_COLUMNS.items())}) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {STAGE_TABLE}")
        with cursor.cursor.copy(f"COPY {STAGE_TABLE} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(_copy_text(columns))
        _transaction_settings(cursor)
        statement = partial(_insert_sql, offer, job, per_row=set(columns), issued_at=issued_at, now=now,
                            want_ids=want_ids)  # fmt: skip
        try:
            # A plain insert spares every row the conflict check of ON CONFLICT; in a savepoint, so that a
            # taken code (rare: the code space is at least 100 times the codes) undoes only this statement.
            with transaction.atomic():
                cursor.execute(*statement(on_conflict=False))
                count, ids, member_ids, event_keys = cursor.fetchone()
        except IntegrityError:
            cursor.execute(*statement(on_conflict=True))
            count, ids, member_ids, event_keys = cursor.fetchone()
    if event_keys:
        _deliveries_record(offer, event_keys, now)
    return Inserted(count=count, ids=ids or [], member_ids=member_ids or [])


def uuid7_hex(count: int, now: datetime) -> list[str]:
    """Time-ordered UUIDs (RFC 9562 version 7: 48 bits of Unix milliseconds, then 74 random bits), as hex.

    Bulk-made coupons get these rather than version 4: inserted in order, they append to the uuid index
    instead of touching a random page of it for every row.
    """
    millis = f"{int(now.timestamp() * 1000):012x}"
    randoms = secrets.token_hex(10 * count)
    return [
        f"{millis}7{randoms[i : i + 3]}{UUID7_VARIANT[randoms[i + 3]]}{randoms[i + 4 : i + 19]}"
        for i in range(0, 20 * count, 20)
    ]


def _copy_text(columns: dict[str, list]) -> str:
    if set(columns) == {"code", "uuid"}:
        codes = "\n".join(columns["code"])
        # Generated codes need no escaping unless the offer's prefix holds one of COPY's special characters.
        if (
            not any(special in codes for special in ("\\", "\t", "\r"))
            and codes.count("\n") == len(columns["code"]) - 1
        ):
            return "".join(f"{c}\t{u}\n" for c, u in zip(columns["code"], columns["uuid"], strict=True))
    return "".join("\t".join(map(_copy_field, row)) + "\n" for row in zip(*columns.values(), strict=True))


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # Codes are ASCII letters, digits, - and _; a prefix could still carry COPY's special characters.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _transaction_settings(cursor) -> None:
    # The messages' rows are sorted in memory; the default 4 MB would spill a 10,000-code chunk to disk.
    cursor.execute("SET LOCAL work_mem = '64MB'")
    if _lz4_available(connection.alias):
        # The messages are stored compressed: lz4 compresses them about four times faster than pglz.
        cursor.execute("SET LOCAL default_toast_compression = 'lz4'")


@cache
def _lz4_available(alias: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
        )
        return cursor.fetchone() is not None


def _insert_sql(
    offer: Offer,
    job: Job | None,
    *,
    per_row: set[str],
    issued_at: datetime | None,
    now: datetime,
    want_ids: bool,
    on_conflict: bool,
) -> tuple[str, list]:
    prototype = _prototype(offer, job, issued_at, now)
    coupon_columns, coupon_values, params = _coupon_columns(prototype)
    snapshot_sql, snapshot_params = _snapshot_sql(offer, prototype, per_row)
    event_columns, event_values, event_params = _event_columns(offer, now)
    # member_no is the offer's merchant's own: another owner's profile of the member never joins.
    member_join = (
        f"LEFT JOIN {MemberProfile._meta.db_table} m ON m.member_id = ins.member_id"
        f" AND m.merchant_id = {int(offer.merchant_id)}"
        if "member_id" in per_row
        else ""
    )
    ids = "(SELECT array_agg(id ORDER BY id) FROM ins)" if want_ids else "NULL"
    member_ids = "(SELECT array_agg(member_id ORDER BY id) FROM ins)" if want_ids else "NULL"
    # Codes go in sorted, so the code index is walked in order; the messages take CREATED_CHUNK rows each
    # (the last one the rest), their codes listed in id order.
    sql = f"""
        WITH ins AS (
            INSERT INTO {Coupon._meta.db_table} ({", ".join(coupon_columns)})
            SELECT {", ".join(coupon_values)} FROM {STAGE_TABLE} s ORDER BY s.code
            {"ON CONFLICT (code) DO NOTHING" if on_conflict else ""}
            RETURNING id, uuid, code, member_id, expires_at, discount_type, discount_value
        ), snap AS (
            SELECT ins.id, (row_number() OVER () - 1) / %s AS grp, {snapshot_sql} AS coupon
            FROM ins {member_join}
        ), ev AS (
            INSERT INTO {Event._meta.db_table} ({", ".join(event_columns)})
            SELECT {", ".join(event_values)} FROM snap GROUP BY grp
            RETURNING id, uuid
        )
        SELECT (SELECT count(*) FROM ins), {ids}, {member_ids},
               (SELECT array_agg(json_build_array(id, uuid)) FROM ev)
    """
    return sql, [*params, events.CREATED_CHUNK, *snapshot_params, *event_params]


def _coupon_columns(prototype: Coupon) -> tuple[list[str], list[str], list]:
    """Every column of a coupon: per-row ones from the staging table, the rest the batch's shared values."""
    per_row = {
        "uuid": "s.uuid",
        "code": "s.code",
        "member_id": "s.member_id",
        "issued_at": "coalesce(s.issued_at, %s)",
        "expires_at": "coalesce(s.expires_at, %s)",
        "discount_type": "s.discount_type",
        "discount_value": "s.discount_value",
    }
    columns, values, params = [], [], []
    for model_field in Coupon._meta.concrete_fields:
        if model_field.primary_key:
            continue
        value = model_field.get_db_prep_save(getattr(prototype, model_field.attname), connection)
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in per_row:
            values.append(per_row[model_field.column])
            if "%s" in per_row[model_field.column]:
                params.append(value)
        else:
            values.append("%s")
            params.append(value)
    return columns, values, params


def _snapshot_sql(offer: Offer, prototype: Coupon, per_row: set[str]) -> tuple[str, list]:
    """events.coupon_snapshot as JSON text built in SQL: keys that vary by row computed, the rest the prototype's.

    Text concatenation (then one jsonb parse per message) costs PostgreSQL about half of jsonb_build_object.
    """
    fragments = {
        "id": ("ins.id::text", []),
        "uuid": ("'\"' || ins.uuid::text || '\"'", []),
        "code": ("to_json(ins.code)::text", []),
        "member_id": ("coalesce(ins.member_id::text, 'null')", []),
        "member_no": ("coalesce(to_json(m.member_no)::text, 'null')", []),
        "expires_at": (f"coalesce('\"' || {SQL_ISO.format(v='ins.expires_at')} || '\"', 'null')", []),
        "discount_value": (
            "coalesce('\"' || (coalesce(ins.discount_value, %s)::numeric(14, 2))::text || '\"', 'null')",
            [offer.discount_value],
        ),
        "coupon_type": (
            "coalesce(to_json(coalesce(ins.discount_type, %s))::text, 'null')",
            [offer.coupon_type],
        ),
    }
    varying = {"id", "uuid", "code"}
    varying |= {"member_id", "member_no"} if "member_id" in per_row else set()
    varying |= {"expires_at"} if "expires_at" in per_row else set()
    varying |= {"discount_value", "coupon_type"} if "discount_type" in per_row else set()
    snapshot = events.coupon_snapshot(prototype, None)
    parts, params = [], []
    for key in snapshot:
        if key in varying:
            expression, expression_params = fragments[key]
            parts.append(f"'{json.dumps(key)}: ' || {expression}")
            params += expression_params
    shared = {key: value for key, value in snapshot.items() if key not in varying}
    params.append(", " + json.dumps(shared, cls=DjangoJSONEncoder)[1:-1] if shared else "")
    return "'{' || " + " || ', ' || ".join(parts) + " || %s || '}'", params


def _event_columns(offer: Offer, now: datetime) -> tuple[list[str], list[str], list]:
    prototype = Event(type="coupon.created", offer=offer, data={}, created_at=now)
    per_row = {
        "uuid": ("gen_random_uuid()", []),
        "data": ("(%s || string_agg(coupon, ', ' ORDER BY id) || ']}')::jsonb", [_message_prefix(offer)]),
    }
    columns, values, params = [], [], []
    for model_field in Event._meta.concrete_fields:
        if model_field.primary_key:
            continue
        columns.append(connection.ops.quote_name(model_field.column))
        if model_field.column in per_row:
            expression, expression_params = per_row[model_field.column]
            values.append(expression)
            params += expression_params
        else:
            values.append("%s")
            params.append(model_field.get_db_prep_save(getattr(prototype, model_field.attname), connection))
    return columns, values, params


def _message_prefix(offer: Offer) -> str:
    """The JSON text of a coupon.created message up to its list of coupons."""
    base = json.dumps(events.event_base(offer), cls=DjangoJSONEncoder)
    return base[:-1] + (", " if base != "{}" else "") + '"coupons": ['


def _deliveries_record(offer: Offer, event_keys: list, now: datetime) -> None:
    """One pending delivery per event written in SQL and matching subscription, through the outbox."""
    subscriptions = subscriptions_matching(event_type="coupon.created", offer=offer)
    if not subscriptions:
        return
    subscription_ids = [s.id for s in subscriptions]
    for event_id, event_uuid in event_keys:
        deliveries_add(Event(id=event_id, uuid=uuid.UUID(event_uuid)), subscription_ids, now=now)
