"""Request and response shapes of the coupons API, kept apart: inputs validate, outputs render."""

from decimal import Decimal

from django.db import models
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.settings import api_settings

from coupons.calendar import EARLIEST, LATEST, in_calendar
from coupons.models import (
    ApiKey,
    ApplicableOn,
    Coupon,
    CouponStatus,
    CouponType,
    ExpiryType,
    ExpiryUnit,
    Job,
    MemberProfile,
    Offer,
    Redemption,
    UsageLimitType,
)

INT32_MAX = 2**31 - 1
INT63_MAX = 2**63 - 1
COUNT_MAX = 10_000_000  # more codes than any offer format allows at 1 % of its space is a typo
AMOUNT = {"max_digits": 14, "decimal_places": 2, "min_value": Decimal("0")}


# --- serializers built once per process, for the hot paths ------------------------------------
#
# Building a serializer deep-copies every declared field (a new instance each), which costs more than
# the validation or rendering itself. Neither validating with run_validation() nor rendering with
# to_representation() changes the serializer, so one instance per class serves every request (and thread).

_built: dict[type, serializers.Serializer] = {}


def _shared(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    serializer = _built.get(serializer_class)
    if serializer is None:
        serializer = serializer_class()
        serializer.fields  # noqa: B018 - bind the fields now, once
        _built[serializer_class] = serializer
    return serializer


def validated(serializer_class: type[serializers.Serializer], data) -> dict:
    """`serializer_class(data=data)`'s validated_data, raising the ValidationError is_valid() would."""
    try:
        return _shared(serializer_class).run_validation(data)
    except ValidationError as exc:
        detail = exc.detail
        if isinstance(detail, list) and len(detail) == 1 and getattr(detail[0], "code", None) == "null":
            # As Serializer.errors words a null body.
            detail = {api_settings.NON_FIELD_ERRORS_KEY: [ErrorDetail("No data provided", code="null")]}
        raise ValidationError(detail) from None


def rendered(serializer_class: type[serializers.Serializer], instance) -> dict:
    """`serializer_class(instance).data`."""
    return _shared(serializer_class).to_representation(instance)


class IsoDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an explicit offset (`+00:00`), never DRF's `Z` shorthand."""

    def to_representation(self, value):
        return timezone.localtime(value).isoformat() if value else None


class OutputSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.DateTimeField: IsoDateTimeField,
    }


# --- errors ----------------------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `already_redeemed`.")
    message = serializers.CharField(help_text="Human-readable explanation.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="For `invalid_request`: each field at fault with its problems.",
    )
    request_id = serializers.CharField(
        help_text="The request's id (the `X-Request-ID` it sent, or one made for it): quote it when reporting."
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


class RefusalSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


# --- offers ----------------------------------------------------------------------------------


class MysteryDiscountSerializer(serializers.Serializer):
    coupon_type = serializers.ChoiceField(
        choices=[CouponType.FIXED_AMOUNT, CouponType.PERCENTAGE, CouponType.FREE_SHIPPING]
    )
    discount_value = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True
    )
    weight = serializers.IntegerField(min_value=1, max_value=INT32_MAX, default=1)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value.get("discount_value") is not None:
            value["discount_value"] = str(value["discount_value"])  # stored in a JSONField
        return value


class OfferSerializer(OutputSerializer):
    merchant_id = serializers.IntegerField(read_only=True)
    site_id = serializers.IntegerField(read_only=True)
    applicable_filters = serializers.ListField(child=serializers.CharField(), read_only=True)
    mystery_discounts = MysteryDiscountSerializer(many=True, read_only=True)
    distributor_ids = serializers.SerializerMethodField()

    class Meta:
        model = Offer
        fields = [
            "id", "uuid", "external_id", "name", "merchant_id", "site_id", "active_status", "start_date",
            "finish_date", "coupon_type", "discount_value", "currency", "applicable_on", "applicable_filters",
            "min_order_amount", "usage_limit_type", "max_redemptions_per_code", "max_redemptions_per_member",
            "expiry_type", "expiry_value", "expiry_unit", "code_length", "code_alphabet", "code_prefix",
            "code_pattern", "vanity_code", "public_token", "mystery_discounts", "content_gate", "issue_from_pool",
            "distributor_ids", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_distributor_ids(self, offer: Offer) -> list[int]:
        return sorted(d.id for d in offer.distributors.all())


class OfferInSerializer(serializers.Serializer):
    """An offer to create (name, coupon_type and, except for freeShipping, discount_value required) or patch."""

    external_id = serializers.CharField(max_length=200, required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(max_length=200)
    merchant_id = serializers.IntegerField(
        required=False, min_value=1, max_value=INT32_MAX, help_text="Defaults to the key's merchant."
    )
    site_id = serializers.IntegerField(
        required=False, min_value=1, max_value=INT32_MAX, help_text="Defaults to the merchant's first site."
    )
    active_status = serializers.ChoiceField(choices=[0, 1], required=False)
    start_date = IsoDateTimeField(required=False, allow_null=True)
    finish_date = IsoDateTimeField(required=False, allow_null=True)
    coupon_type = serializers.ChoiceField(choices=CouponType.choices)
    discount_value = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True
    )
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False, help_text="ISO 4217, e.g. AUD.")
    applicable_on = serializers.ChoiceField(choices=ApplicableOn.choices, required=False)
    applicable_filters = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=1000, required=False
    )
    min_order_amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0"), required=False, allow_null=True
    )
    usage_limit_type = serializers.ChoiceField(choices=UsageLimitType.choices, required=False)
    max_redemptions_per_code = serializers.IntegerField(
        min_value=1, max_value=INT32_MAX, required=False, allow_null=True
    )
    max_redemptions_per_member = serializers.IntegerField(
        min_value=1, max_value=INT32_MAX, required=False, allow_null=True
    )
    expiry_type = serializers.ChoiceField(choices=ExpiryType.choices, required=False, allow_null=True)
    expiry_value = serializers.IntegerField(min_value=1, max_value=INT32_MAX, required=False, allow_null=True)
    expiry_unit = serializers.ChoiceField(choices=ExpiryUnit.choices, required=False, allow_null=True)
    mystery_discounts = MysteryDiscountSerializer(many=True, required=False)
    code_length = serializers.IntegerField(min_value=4, max_value=64, required=False)
    code_alphabet = serializers.CharField(max_length=100, required=False)
    code_prefix = serializers.CharField(max_length=20, required=False, allow_blank=True)
    code_pattern = serializers.CharField(max_length=64, required=False, allow_blank=True)
    vanity_code = serializers.CharField(max_length=64, required=False, allow_null=True)
    content_gate = serializers.BooleanField(required=False)
    issue_from_pool = serializers.BooleanField(required=False)


class OfferStatsDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    count = serializers.IntegerField()
    discount = serializers.DecimalField(**AMOUNT)


class OfferStatsSerializer(serializers.Serializer):
    codes = serializers.IntegerField(help_text="Codes of the offer.")
    issued = serializers.IntegerField()
    viewed = serializers.IntegerField()
    redeemed = serializers.IntegerField(help_text="Codes used at least once.")
    expired = serializers.IntegerField()
    redemptions = serializers.IntegerField(help_text="Uses not rolled back.")
    redemption_rate = serializers.FloatField(help_text="Redeemed codes per issued code.")
    discount_given = serializers.DecimalField(**AMOUNT)
    order_value = serializers.DecimalField(**AMOUNT)
    redemptions_per_day = OfferStatsDaySerializer(many=True)


# --- coupons ---------------------------------------------------------------------------------


class CouponSerializer(OutputSerializer):
    offer_id = serializers.IntegerField(read_only=True)
    member_id = serializers.IntegerField(read_only=True, allow_null=True)
    job_id = serializers.IntegerField(read_only=True, allow_null=True)
    status = serializers.SerializerMethodField()
    redemptions_left = serializers.IntegerField(read_only=True, allow_null=True)
    discount_type = serializers.SerializerMethodField()
    discount_value = serializers.SerializerMethodField()

    class Meta:
        model = Coupon
        fields = [
            "id", "uuid", "code", "offer_id", "member_id", "identifier", "session_id", "job_id", "status",
            "issued_at", "viewed_at", "expires_at", "times_redeemed", "max_redemptions", "redemptions_left",
            "discount_type", "discount_value",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=CouponStatus.choices))
    def get_status(self, coupon: Coupon) -> str:
        return coupon.effective_status()

    @extend_schema_field(serializers.ChoiceField(choices=CouponType.choices))
    def get_discount_type(self, coupon: Coupon) -> str:
        return coupon.discount_type or coupon.offer.coupon_type

    @extend_schema_field(serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True))
    def get_discount_value(self, coupon: Coupon) -> str | None:
        value = coupon.discount_value if coupon.discount_value is not None else coupon.offer.discount_value
        return None if value is None else f"{value:.2f}"


class CodeSerializer(CouponSerializer):
    """The code query: the coupon with its offer."""

    offer = OfferSerializer(read_only=True)

    class Meta(CouponSerializer.Meta):
        fields = [*CouponSerializer.Meta.fields, "offer"]
        read_only_fields = fields


class CouponsCreatedSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    results = CouponSerializer(many=True)


class CouponsCreateInSerializer(serializers.Serializer):
    """Redcat's body (`Members`, `Multiple`, `TaskServer`) or `count` codes with no member."""

    Members = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=INT63_MAX), required=False, allow_empty=False
    )
    Multiple = serializers.BooleanField(
        required=False, help_text="false: a member already holding a live code gets no second one."
    )
    Mulitple = serializers.BooleanField(required=False, help_text="Redcat's spelling of `Multiple`.")
    TaskServer = serializers.BooleanField(
        required=False, default=False, help_text="true: create in a background job (202)."
    )
    count = serializers.IntegerField(required=False, min_value=1, max_value=COUNT_MAX)

    def validate(self, data):
        if ("Members" in data) == ("count" in data):
            raise serializers.ValidationError({"Members": ["Give either Members or count."]})
        return data


class ImportResultSerializer(serializers.Serializer):
    imported = serializers.IntegerField(help_text="Codes imported.")


class IssueInSerializer(serializers.Serializer):
    identifier = serializers.CharField(
        max_length=200, required=False, help_text="Your key for create-or-retrieve, e.g. a customer id."
    )
    session_id = serializers.CharField(max_length=100, required=False)
    member_id = serializers.IntegerField(min_value=1, max_value=INT63_MAX, required=False)
    email = serializers.EmailField(max_length=200, required=False)
    attributes = serializers.DictField(required=False)
    competition_entry_id = serializers.UUIDField(required=False)

    def validate(self, data):
        if "identifier" not in data and "session_id" not in data:
            raise serializers.ValidationError({"identifier": ["This field is required."]})
        return data


class CustomerEngagementQuerySerializer(serializers.Serializer):
    applicationId = serializers.IntegerField(
        min_value=1, max_value=INT32_MAX, help_text="The offer's merchant id or site id."
    )
    campaignId = serializers.IntegerField(min_value=1, max_value=INT32_MAX, help_text="The offer id.")
    externalCampaignId = serializers.CharField(max_length=200, help_text="The offer's external_id.")
    identifier = serializers.CharField(
        max_length=200, required=False, help_text="Create-or-retrieve key; without it a new code each time."
    )


class CouponFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=CouponStatus.choices, required=False)
    member = serializers.IntegerField(min_value=1, max_value=INT63_MAX, required=False)
    job = serializers.IntegerField(min_value=1, max_value=INT63_MAX, required=False)


class CalendarDateTimeField(IsoDateTimeField):
    """A moment every zone can render (years 2 to 9998), as the platform stores them."""

    def to_internal_value(self, value):
        moment = super().to_internal_value(value)
        if not in_calendar(moment):
            raise serializers.ValidationError(f"Dates are between {EARLIEST.year} and {LATEST.year}.")
        return moment


class RedemptionFilterSerializer(serializers.Serializer):
    order_id = serializers.CharField(
        max_length=200, required=False, help_text="Only this order's redemptions."
    )
    code = serializers.CharField(max_length=64, required=False, help_text="Only this code's redemptions.")
    since = CalendarDateTimeField(required=False, help_text="Redeemed at or after this moment.")
    until = CalendarDateTimeField(required=False, help_text="Redeemed before this moment.")

    def validate(self, data):
        if "since" in data and "until" in data and data["until"] <= data["since"]:
            raise serializers.ValidationError({"until": ["until is after since."]})
        return data


# --- validate and redeem ---------------------------------------------------------------------


class OrderInSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=200)
    order_value = serializers.DecimalField(**AMOUNT)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", help_text="ISO 4217, e.g. AUD.")
    products = serializers.ListField(
        child=serializers.JSONField(), max_length=1000, required=False,
        help_text='Product ids, or objects {"id", "amount"}.',
    )  # fmt: skip
    collections = serializers.ListField(
        child=serializers.JSONField(), max_length=1000, required=False,
        help_text='Collection ids, or objects {"id", "amount"}.',
    )  # fmt: skip
    shipping_amount = serializers.DecimalField(**AMOUNT, required=False, allow_null=True)
    member_id = serializers.IntegerField(min_value=1, max_value=INT63_MAX, required=False, allow_null=True)


def order_fields(validated_data: dict) -> dict:
    """The order part of a validated OrderInSerializer body, as services.order_parse takes it."""
    names = ("order_value", "currency", "products", "collections", "shipping_amount")
    return {name: validated_data.get(name) for name in names}


class ValidateInSerializer(OrderInSerializer):
    pass


class RedeemInSerializer(OrderInSerializer):
    order_id = serializers.CharField(max_length=200)
    location = serializers.CharField(max_length=200, required=False, allow_null=True, help_text="Shop name.")


class ValidationAnswerSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    code = serializers.CharField()
    offer_id = serializers.IntegerField()
    discount_amount = serializers.DecimalField(**AMOUNT)
    free_shipping = serializers.BooleanField()
    error = RefusalSerializer(allow_null=True)


class ViewInSerializer(serializers.Serializer):
    session_id = serializers.CharField(max_length=100, required=False)


# --- redemptions, members, jobs --------------------------------------------------------------


class RedemptionSerializer(OutputSerializer):
    coupon_id = serializers.IntegerField(read_only=True)
    code = serializers.CharField(source="coupon.code", read_only=True)
    offer_id = serializers.IntegerField(source="coupon.offer_id", read_only=True)
    member_id = serializers.IntegerField(read_only=True, allow_null=True)
    merchant_id = serializers.IntegerField(read_only=True)
    distributor_id = serializers.IntegerField(read_only=True, allow_null=True)
    location = serializers.CharField(source="location.name", read_only=True, allow_null=True)

    class Meta:
        model = Redemption
        fields = [
            "id", "coupon_id", "code", "offer_id", "order_id", "order_value", "currency", "discount_amount",
            "free_shipping", "member_id", "merchant_id", "distributor_id", "location", "redeemed_at",
            "rolled_back_at",
        ]  # fmt: skip
        read_only_fields = fields


class MemberSerializer(OutputSerializer):
    """A member as the key's owner knows it: its own profile, with the member's id."""

    id = serializers.IntegerField(source="member_id", read_only=True)

    class Meta:
        model = MemberProfile
        fields = ["id", "member_no", "external_id", "uuid", "email", "attributes", "created_at"]
        read_only_fields = fields


class MemberInSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        min_value=1,
        max_value=2**62 - 1,
        required=False,
        help_text="Your member number, e.g. Redcat's MemberID.",
    )
    member_no = serializers.CharField(max_length=64, required=False, allow_null=True)
    external_id = serializers.CharField(max_length=200, required=False, allow_null=True)
    email = serializers.EmailField(max_length=254, required=False, allow_null=True)
    attributes = serializers.DictField(required=False)


class JobSerializer(OutputSerializer):
    offer_id = serializers.IntegerField(read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    error = serializers.SerializerMethodField()
    rows = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = ["id", "kind", "offer_id", "state", "done", "total", "error", "rows", "progress_percent",
                  "created_at", "started_at", "finished_at"]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, job: Job) -> str | None:
        return job.error or None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_rows(self, job: Job) -> list:
        """The rejected rows of a failed import: [{row, code, reason, message}]."""
        return job.params.get("errors", []) if isinstance(job.params, dict) else []


# --- API keys --------------------------------------------------------------------------------


class ApiKeySerializer(OutputSerializer):
    """A key as listed: its prefix identifies it; the key itself is never shown again."""

    merchant_id = serializers.IntegerField(read_only=True, allow_null=True)
    distributor_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "merchant_id", "distributor_id", "created_at", "last_used_at",
                  "expires_at", "revoked_at"]  # fmt: skip
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        required=False, help_text="The full key: shown in this answer only (not in an idempotent replay)."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class ApiKeyInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.SCOPES),
        min_length=1,
        max_length=len(ApiKey.SCOPES),
        help_text="Only scopes the key making it holds itself.",
    )
    expires_at = IsoDateTimeField(
        required=False,
        allow_null=True,
        help_text="From then on the key answers 401. Defaults to the making key's own expiry, if it has one.",
    )
