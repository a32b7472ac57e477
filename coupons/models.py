"""Offers, coupon codes, members, redemptions, background jobs and API keys."""

import secrets
import uuid
import zoneinfo
from datetime import datetime
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

DEFAULT_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0 O 1 I L: they are misread
TIMEZONE_CHOICES = sorted((name, name) for name in zoneinfo.available_timezones())


def new_public_token() -> str:
    return secrets.token_urlsafe(12)


class Party(models.Model):
    """A business known by its unique name: what merchants and distributors have in common."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Merchant(Party):
    """The brand that owns offers and redeems codes."""


class Distributor(Party):
    """A publisher that issues codes of the offers it is authorised for."""


class Site(models.Model):
    """Where codes are shown and used; its time zone renders naive vendor dates."""

    id = models.AutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    merchant = models.ForeignKey(
        Merchant, on_delete=models.PROTECT, related_name="sites", null=True, blank=True
    )
    timezone = models.CharField(max_length=64, default="UTC", choices=TIMEZONE_CHOICES)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Location(models.Model):
    """A shop where codes are redeemed."""

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=200)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="locations")

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="location_unique_name_per_site")]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A customer's id (the integrator's own, e.g. Redcat's MemberID, or one the platform gives).

    The id is all owners share: what each owner told the platform about the member lives in that
    owner's MemberProfile, so two owners both using member 1300 never see each other's data.
    """

    id = models.BigAutoField(primary_key=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Member {self.id}"


class MemberProfile(models.Model):
    """What one owner (a merchant or a distributor) told the platform about a member: that owner's alone.

    A profile with neither owner holds data from before profiles existed that no offer tied to a merchant;
    only staff see it.
    """

    id = models.BigAutoField(primary_key=True)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="profiles")
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="member_profiles"
    )
    distributor = models.ForeignKey(
        Distributor, on_delete=models.CASCADE, null=True, blank=True, related_name="member_profiles"
    )
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    member_no = models.CharField(max_length=64, null=True, blank=True)
    external_id = models.CharField(max_length=200, null=True, blank=True, db_index=True)
    email = models.EmailField(null=True, blank=True, db_index=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["member_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(merchant__isnull=True) | Q(distributor__isnull=True),
                name="member_profile_one_owner",
            ),
            models.UniqueConstraint(
                fields=["merchant", "member"], condition=Q(merchant__isnull=False),
                name="member_profile_unique_per_merchant",
            ),
            models.UniqueConstraint(
                fields=["distributor", "member"], condition=Q(distributor__isnull=False),
                name="member_profile_unique_per_distributor",
            ),
            models.UniqueConstraint(
                fields=["member"], condition=Q(merchant__isnull=True, distributor__isnull=True),
                name="member_profile_unique_unowned",
            ),
            models.UniqueConstraint(
                fields=["merchant", "member_no"], condition=Q(merchant__isnull=False, member_no__isnull=False),
                name="member_profile_unique_number_per_merchant",
            ),
            models.UniqueConstraint(
                fields=["distributor", "member_no"],
                condition=Q(distributor__isnull=False, member_no__isnull=False),
                name="member_profile_unique_number_per_distributor",
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return self.member_no or self.email or f"Member {self.member_id}"


class CouponType(models.TextChoices):
    FIXED_AMOUNT = "fixedAmount", "Fixed amount"
    PERCENTAGE = "percentage", "Percentage"
    FREE_SHIPPING = "freeShipping", "Free shipping"
    MYSTERY = "mystery", "Mystery discount"


class ApplicableOn(models.TextChoices):
    ORDER = "order", "Whole order"
    PRODUCT = "product", "Specific products"
    COLLECTION = "collection", "Specific collections"


class UsageLimitType(models.TextChoices):
    ONCE = "once", "Once"
    MULTIPLE = "multiple", "Multiple"


class ExpiryType(models.TextChoices):
    DATE = "date", "On a date"
    RELATIVE = "relative", "Relative to issue"


class ExpiryUnit(models.TextChoices):
    HOUR = "hour", "Hours"
    DAY = "day", "Days"


class Offer(models.Model):
    """A promotion (Redcat's "Coupon") with its discount rules and code format."""

    id = models.AutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    external_id = models.CharField(max_length=200, null=True, blank=True, db_index=True)
    name = models.CharField(max_length=200)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="offers")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="offers")
    distributors = models.ManyToManyField(Distributor, related_name="offers", blank=True)
    active_status = models.PositiveSmallIntegerField(default=1, choices=[(1, "Active"), (0, "Inactive")])
    start_date = models.DateTimeField(null=True, blank=True)
    finish_date = models.DateTimeField(null=True, blank=True)

    coupon_type = models.CharField(max_length=20, choices=CouponType.choices)
    discount_value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3, default="AUD")
    applicable_on = models.CharField(max_length=20, choices=ApplicableOn.choices, default=ApplicableOn.ORDER)
    applicable_filters = models.JSONField(default=list, blank=True)
    min_order_amount = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(Decimal("0"))]
    )
    usage_limit_type = models.CharField(
        max_length=10, choices=UsageLimitType.choices, default=UsageLimitType.ONCE
    )
    max_redemptions_per_code = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: one use when usage is 'once', unlimited when 'multiple'."
    )
    max_redemptions_per_member = models.PositiveIntegerField(null=True, blank=True)
    expiry_type = models.CharField(max_length=10, choices=ExpiryType.choices, null=True, blank=True)
    expiry_value = models.PositiveIntegerField(null=True, blank=True)
    expiry_unit = models.CharField(max_length=10, choices=ExpiryUnit.choices, null=True, blank=True)
    mystery_discounts = models.JSONField(
        default=list,
        blank=True,
        help_text='For mystery offers: [{"coupon_type": "percentage", "discount_value": "10", "weight": 3}, ...]',
    )

    code_length = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(4), MaxValueValidator(64)]
    )
    code_alphabet = models.CharField(max_length=100, default=DEFAULT_CODE_ALPHABET)
    code_prefix = models.CharField(max_length=20, blank=True, default="")
    code_pattern = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="# digit, ? letter, * any alphabet character; e.g. SUMMER-####-????",
    )
    vanity_code = models.CharField(max_length=64, null=True, blank=True, unique=True)
    content_gate = models.BooleanField(
        default=False, help_text="Ask the shopper for an e-mail before revealing a code."
    )
    issue_from_pool = models.BooleanField(
        default=False,
        help_text="Issue codes from those generated or uploaded in advance (sold out when none are left) "
        "instead of generating a new code per issue.",
    )
    public_token = models.CharField(max_length=32, unique=True, default=new_public_token, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        permissions = [("view_report", "Can view offer reports")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(coupon_type="percentage") | Q(discount_value__lte=100, discount_value__gte=0),
                name="offer_percentage_between_0_and_100",
            ),
            models.CheckConstraint(
                condition=Q(discount_value__isnull=True) | Q(discount_value__gte=0),
                name="offer_discount_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(min_order_amount__isnull=True) | Q(min_order_amount__gte=0),
                name="offer_min_order_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def code_limit_per_coupon(self) -> int | None:
        """Uses one code allows; None means unlimited."""
        if self.max_redemptions_per_code:
            return self.max_redemptions_per_code
        return 1 if self.usage_limit_type == UsageLimitType.ONCE else None


class CouponStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REDEEMED = "redeemed", "Redeemed"
    EXPIRED = "expired", "Expired"
    INACTIVE = "inactive", "Inactive"


class Job(models.Model):
    """A background generation, import or export run with its progress."""

    class Kind(models.TextChoices):
        GENERATE = "generate", "Generate codes"
        IMPORT = "import", "Import codes"
        LIMITS = "limits", "Apply usage limits"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="jobs")
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED, db_index=True)
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    params = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"Job {self.id} ({self.kind}, {self.state})"

    @property
    def progress_percent(self) -> int:
        return (
            int(self.done * 100 / self.total)
            if self.total
            else (100 if self.state == self.State.SUCCEEDED else 0)
        )


class JobChunk(models.Model):
    """One transaction of a job: its codes are made, stored and marked done together, so a crash re-runs it whole."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    size = models.PositiveIntegerField(help_text="Codes (or file rows) this chunk is to make.")
    made = models.PositiveIntegerField(default=0)
    member_ids = models.JSONField(null=True, blank=True)
    payload = models.BinaryField(null=True, blank=True, help_text="An import's uploaded file.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "index"]
        constraints = [models.UniqueConstraint(fields=["job", "index"], name="job_chunk_unique_index")]
        indexes = [models.Index(fields=["job", "state"], name="job_chunk_state_idx")]

    def __str__(self) -> str:
        return f"Job {self.job_id} chunk {self.index} ({self.state})"


class Coupon(models.Model):
    """One code of an offer."""

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Unique by a constraint below rather than unique=True, which on PostgreSQL adds a second (LIKE) index.
    code = models.CharField(max_length=64)
    # Every index costs each of a million-code job's inserts: the foreign keys' own indexes are left out
    # where a composite index below starts with the same column.
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="coupons", db_index=False)
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="coupons", db_index=False
    )
    identifier = models.CharField(max_length=200, null=True, blank=True)
    session_id = models.CharField(max_length=100, null=True, blank=True)
    competition_entry_id = models.UUIDField(null=True, blank=True)
    # No database constraint: it would be checked once per inserted code at commit, and jobs are only
    # deleted through Django, which nulls this link (SET_NULL) itself.
    job = models.ForeignKey(
        Job, on_delete=models.SET_NULL, null=True, blank=True, related_name="coupons", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    status = models.CharField(max_length=10, choices=CouponStatus.choices, default=CouponStatus.ACTIVE)
    discount_type = models.CharField(max_length=20, choices=CouponType.choices, null=True, blank=True)
    discount_value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: unlimited.")
    issued_at = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["offer", "identifier"],
                condition=Q(identifier__isnull=False),
                name="coupon_unique_identifier_per_offer",
            ),
            models.UniqueConstraint(
                fields=["offer", "session_id"],
                condition=Q(session_id__isnull=False),
                name="coupon_unique_session_per_offer",
            ),
            models.UniqueConstraint(fields=["code"], name="coupon_unique_code"),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(times_redeemed__lte=F("max_redemptions")),
                name="coupon_times_redeemed_within_limit",
            ),
        ]
        indexes = [
            models.Index(fields=["offer", "status"], name="coupon_offer_status_idx"),
            models.Index(fields=["member", "offer"], name="coupon_member_offer_idx"),
            models.Index(fields=["job"], name="coupon_job_idx"),
            models.Index(fields=["status", "expires_at"], name="coupon_status_expiry_idx"),
            # Codes not yet handed out: the pool an issue takes from, found without scanning issued ones.
            models.Index(fields=["offer", "id"], condition=Q(issued_at__isnull=True), name="coupon_pool_idx"),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def redemptions_left(self) -> int | None:
        if self.max_redemptions is None:
            return None
        return max(self.max_redemptions - self.times_redeemed, 0)

    def effective_status(self, now=None) -> str:
        """The status a shopper would see now: a stale 'active' past its expiry reads as expired."""
        now = now or timezone.now()
        if self.status == CouponStatus.ACTIVE and self.expires_at and self.expires_at <= now:
            return CouponStatus.EXPIRED
        return self.status


class Redemption(models.Model):
    """One use of a code; a rollback keeps the row and gives the use back."""

    id = models.BigAutoField(primary_key=True)
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    order_id = models.CharField(max_length=200)
    order_value = models.DecimalField(
        max_digits=14, decimal_places=2, validators=[MinValueValidator(Decimal("0"))]
    )
    currency = models.CharField(max_length=3)
    discount_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    free_shipping = models.BooleanField(default=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="redemptions")
    distributor = models.ForeignKey(
        Distributor, on_delete=models.SET_NULL, null=True, blank=True, related_name="redemptions"
    )
    location = models.ForeignKey(
        Location, on_delete=models.SET_NULL, null=True, blank=True, related_name="redemptions"
    )
    member = models.ForeignKey(
        Member, on_delete=models.SET_NULL, null=True, blank=True, related_name="redemptions"
    )
    redeemed_at = models.DateTimeField(default=timezone.now, db_index=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["coupon", "order_id"],
                condition=Q(rolled_back_at__isnull=True),
                name="redemption_unique_live_order_per_coupon",
            ),
            models.CheckConstraint(
                condition=Q(order_value__gte=0), name="redemption_order_value_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(discount_amount__gte=0), name="redemption_discount_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "coupon"], name="redemption_member_coupon_idx"),
            # Reconciliation looks redemptions up by the integrator's order id (GET /redemptions/?order_id=).
            models.Index(fields=["order_id"], name="redemption_order_id_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id} / {self.order_id}"


class ApiKey(models.Model):
    """A hashed API key with scopes, owned by a merchant or a distributor."""

    # `keys` manages the owner's keys over the API, never beyond the scopes the managing key holds itself.
    SCOPES = ["offers", "issue", "validate", "redeem", "read", "webhooks", "keys"]

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=200, blank=True, default="")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=128, editable=False)
    scopes = models.JSONField(default=list)
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    distributor = models.ForeignKey(
        Distributor, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="From then on the key answers 401.")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(merchant__isnull=False) | Q(distributor__isnull=False),
                name="api_key_has_an_owner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name or 'API key'} ({self.prefix}…)"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for 24 hours."""

    id = models.BigAutoField(primary_key=True)
    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    # The bytes sent, not a JSON value: jsonb would reorder keys, and a replay must be the same answer.
    response_content = models.BinaryField(default=b"")
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="idempotency_unique_key")]

    def __str__(self) -> str:
        return self.key


class ThrottleCounter(models.Model):
    """Requests counted in one window of a rate limit, shared by every process (see coupons.counters)."""

    key = models.CharField(max_length=200, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    # Kept to the end of its window, then purged by a schedule: never culled while it still counts.
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key}: {self.count}"
