"""Bulk writes of new coupons with their coupon.created events: COPY on PostgreSQL, batched ORM inserts elsewhere."""

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.utils import timezone

from coupons import events, services
from coupons.codes import CodeFormat
from coupons.errors import ApplicationError
from coupons.models import Coupon, Job, Member, Offer
from webhooks.models import Event
from webhooks.outbox import deliveries_add, subscriptions_matching

STAGE_TABLE = "coupon_stage"
# Per-row columns of the staging table; everything else about a new coupon is the same for the whole batch.
STAGE_COLUMNS = {
    "code": "varchar(64)",
    "member_id": "bigint",
    "issued_at": "timestamptz",
    "expires_at": "timestamptz",
    "discount_type": "varchar(20)",
    "discount_value": "numeric(12, 2)",
}
TOP_UP_ROUNDS = 20
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
    if not use_copy():
        coupons = services.coupons_build(offer=offer, count=count, members=members, job=job, issued=issued)
        if coupons:
            services.coupons_insert(coupons)
            services.coupons_record_created(offer, coupons)
        return len(coupons)
    now = timezone.now()
    code_format = CodeFormat.for_offer(offer)
    wanted = len(members) if members is not None else count
    member_ids = [m.id for m in members] if members is not None else None
    made: list[int] = []
    for _ in range(TOP_UP_ROUNDS):
        missing = wanted - len(made) if member_ids is None else len(member_ids)
        if missing <= 0:
            break
        rows = _random_rows(offer, code_format, missing, member_ids)
        inserted = _copy_insert(offer, job, rows, issued_at=now if issued else None, now=now,
                                want_ids=members is not None)  # fmt: skip
        made += inserted.ids or [0] * inserted.count
        if member_ids is not None:
            # Only the members whose code collided with one already taken need another draw.
            member_ids = list((Counter(member_ids) - Counter(inserted.member_ids)).elements())
    else:
        raise ApplicationError(
            "invalid_request", "Could not draw enough unique codes; widen the code format."
        )
    if members is not None:
        _issued_events(offer, made)
    return len(made)


def _random_rows(
    offer: Offer, code_format: CodeFormat, count: int, member_ids: list[int] | None
) -> NewCoupons:
    codes = list(dict.fromkeys(code_format.generate(count)))  # a repeat within the draw is dropped here
    while len(codes) < count:
        codes = list(dict.fromkeys(codes + code_format.generate(count - len(codes))))
    rows = NewCoupons(codes=codes, member_ids=member_ids)
    if offer.coupon_type == "mystery":
        draws = [services.mystery_draw(offer) for _ in codes]
        rows.discount_types = [d[0] for d in draws]
        rows.discount_values = [d[1] for d in draws]
    return rows


def _issued_events(offer: Offer, coupon_ids: list[int]) -> None:
    coupons = Coupon.objects.filter(id__in=coupon_ids).select_related("member").order_by("id")
    for coupon in coupons:
        coupon.offer = offer
        events.record_coupon_event("coupon.issued", coupon)


# --- given codes (imports) ---------------------------------------------------------------------


def coupons_insert_given(*, offer: Offer, job: Job | None, rows: NewCoupons) -> int:
    """Insert codes the user chose (validated, with per-row issued_at and expires_at); a code taken meanwhile fails all."""
    now = timezone.now()
    if use_copy():
        inserted = _copy_insert(offer, job, rows, issued_at=None, now=now, want_ids=bool(rows.member_ids))
        if inserted.count != len(rows.codes):
            raise _taken_meanwhile()
        _issued_events(offer, [i for i, m in zip(inserted.ids, inserted.member_ids, strict=True) if m])
        return inserted.count
    if Coupon.objects.filter(code__in=rows.codes).exists():
        raise _taken_meanwhile()
    coupons = _orm_coupons(offer, job, rows, now=now)
    Coupon.objects.bulk_create(coupons, batch_size=2000)
    services.coupons_record_created(offer, coupons)
    return len(coupons)


def _taken_meanwhile() -> ApplicationError:
    return ApplicationError(
        "invalid_request",
        "Some codes were taken by another upload while this one was being stored; nothing was imported.",
        fields={"file": ["codes_taken"]},
    )


def _orm_coupons(offer: Offer, job: Job | None, rows: NewCoupons, *, now: datetime) -> list[Coupon]:
    members = Member.objects.in_bulk({m for m in rows.member_ids or [] if m})
    limit = offer.code_limit_per_coupon
    column = lambda values, i: values[i] if values else None  # noqa: E731
    return [
        Coupon(
            offer=offer,
            code=code,
            member=members.get(column(rows.member_ids, i)),
            job=job,
            max_redemptions=limit,
            issued_at=column(rows.issued_at, i),
            expires_at=column(rows.expires_at, i),
            created_at=now,
            updated_at=now,
        )  # fmt: skip
        for i, code in enumerate(rows.codes)
    ]


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
    columns = rows.columns()
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} "
            f"({', '.join(f'{n} {t}' for n, t in STAGE_COLUMNS.items())}) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {STAGE_TABLE}")
        with cursor.cursor.copy(f"COPY {STAGE_TABLE} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(_copy_text(columns))
        sql, params = _insert_sql(offer, job, issued_at=issued_at, now=now, want_ids=want_ids)
        cursor.execute(sql, params)
        count, ids, member_ids, event_keys = cursor.fetchone()
    if event_keys:
        _deliveries_record(offer, event_keys, now)
    return Inserted(count=count, ids=ids or [], member_ids=member_ids or [])


def _copy_text(columns: dict[str, list]) -> str:
    if list(columns) == ["code"]:
        return "".join(_copy_field(c) + "\n" for c in columns["code"])
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


def _insert_sql(
    offer: Offer, job: Job | None, *, issued_at: datetime | None, now: datetime, want_ids: bool
) -> tuple[str, list]:
    prototype = Coupon(
        offer=offer, job=job, max_redemptions=offer.code_limit_per_coupon, issued_at=issued_at,
        expires_at=services.coupon_expiry(offer, issued_at), created_at=now, updated_at=now,
    )  # fmt: skip
    coupon_columns, coupon_values, params = _coupon_columns(prototype)
    snapshot_sql, snapshot_params = _snapshot_sql(offer, prototype)
    event_columns, event_values, event_params = _event_columns(offer, now)
    ids = "(SELECT array_agg(id ORDER BY id) FROM ins)" if want_ids else "NULL"
    member_ids = "(SELECT array_agg(member_id ORDER BY id) FROM ins)" if want_ids else "NULL"
    sql = f"""
        WITH ins AS (
            INSERT INTO {Coupon._meta.db_table} ({", ".join(coupon_columns)})
            SELECT {", ".join(coupon_values)} FROM {STAGE_TABLE} s
            ON CONFLICT (code) DO NOTHING
            RETURNING id, uuid, code, member_id, expires_at, discount_type, discount_value
        ), snap AS (
            SELECT ins.id, (row_number() OVER (ORDER BY ins.id) - 1) / %s AS grp, {snapshot_sql} AS coupon
            FROM ins LEFT JOIN {Member._meta.db_table} m ON m.id = ins.member_id
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
        "uuid": "gen_random_uuid()",
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


def _snapshot_sql(offer: Offer, prototype: Coupon) -> tuple[str, list]:
    """events.coupon_snapshot in SQL: the per-row keys computed, every other key copied from the prototype's."""
    per_row = {
        "id": "ins.id",
        "uuid": "ins.uuid::text",
        "code": "ins.code",
        "member_id": "ins.member_id",
        "member_no": "m.member_no",
        "expires_at": SQL_ISO.format(v="ins.expires_at"),
        "discount_value": "(coalesce(ins.discount_value, %s)::numeric(14, 2))::text",
        "coupon_type": "coalesce(ins.discount_type, %s)",
    }
    per_row_params = {"discount_value": [offer.discount_value], "coupon_type": [offer.coupon_type]}
    snapshot = events.coupon_snapshot(prototype, None)
    shared = {key: value for key, value in snapshot.items() if key not in per_row}
    pairs, params = [], []
    for key in snapshot:
        if key in per_row:
            pairs.append(f"'{key}', {per_row[key]}")
            params += per_row_params.get(key, [])
    return f"%s::jsonb || jsonb_build_object({', '.join(pairs)})", [
        json.dumps(shared, cls=DjangoJSONEncoder),
        *params,
    ]


def _event_columns(offer: Offer, now: datetime) -> tuple[list[str], list[str], list]:
    prototype = Event(type="coupon.created", offer=offer, data={}, created_at=now)
    per_row = {
        "uuid": ("gen_random_uuid()", []),
        "data": (
            "%s::jsonb || jsonb_build_object('coupons', jsonb_agg(coupon ORDER BY id))",
            [json.dumps(events.event_base(offer), cls=DjangoJSONEncoder)],
        ),
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


def _deliveries_record(offer: Offer, event_keys: list, now: datetime) -> None:
    """One pending delivery per event written in SQL and matching subscription, through the outbox."""
    subscriptions = subscriptions_matching(event_type="coupon.created", offer=offer)
    if not subscriptions:
        return
    subscription_ids = [s.id for s in subscriptions]
    for event_id, event_uuid in event_keys:
        deliveries_add(Event(id=event_id, uuid=uuid.UUID(event_uuid)), subscription_ids, now=now)
