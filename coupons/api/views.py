"""Coupons API views: each parses its input, calls one service or selector, and renders the answer."""

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from audit.services import audit_record
from coupons import csv_io, jobs, selectors, services
from coupons.api import serializers as s
from coupons.api.base import ApiView
from coupons.api.pagination import CursorOrPagePagination, IdCursorPagination
from coupons.api.parsers import CsvBodyParser, JsonOnlyNegotiation
from coupons.api.schema import error_response
from coupons.api.throttling import others_codes_count_once, others_codes_guard, unknown_code_guard
from coupons.errors import ApplicationError, invalid, not_found
from coupons.models import ApiKey, Coupon, CouponStatus, Job, Merchant, Redemption, Site

READ = ("read", "offers")
LOOKUP = ("read", "validate", "redeem")


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _paginated(view: ApiView, queryset: QuerySet, serializer_class) -> Response:
    page = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer_class(page, many=True).data)


def _coupons(queryset: QuerySet) -> QuerySet[Coupon]:
    return queryset.select_related("offer").order_by("id")


def _redemptions(queryset: QuerySet) -> QuerySet[Redemption]:
    return queryset.select_related("coupon", "location").order_by("-id")


# --- offers ----------------------------------------------------------------------------------


class OffersApi(ApiView):
    required_scope = {"GET": READ, "POST": "offers"}

    @extend_schema(
        operation_id="listOffers",
        summary="List offers",
        parameters=[
            OpenApiParameter("external_id", str, description="Only the offer with this external_id.")
        ],
        responses={200: s.OfferSerializer(many=True)},
    )
    def get(self, request):
        offers = selectors.offers_visible_to(self.owner).prefetch_related("distributors").order_by("-id")
        if "external_id" in request.query_params:
            offers = offers.filter(external_id=request.query_params["external_id"])
        return _paginated(self, offers, s.OfferSerializer)

    @extend_schema(
        operation_id="createOffer",
        summary="Create an offer",
        request=s.OfferInSerializer,
        responses={201: s.OfferSerializer},
    )
    def post(self, request):
        fields = dict(_valid(s.OfferInSerializer, request.data))
        merchant, site = self._merchant_and_site(fields.pop("merchant_id", None), fields.pop("site_id", None))
        with others_codes_guard(request):
            offer = services.offer_create(merchant=merchant, site=site, **fields)
        if self.owner.distributor_id is not None:
            # A merchant-and-distributor key would not see its own offer otherwise.
            offer.distributors.add(self.owner.distributor_id)
        audit_record(api_key=request.auth, action="offer.create", obj=offer, changes=fields)
        return Response(s.OfferSerializer(offer).data, status=status.HTTP_201_CREATED)

    def _merchant_and_site(
        self, merchant_id: int | None, site_id: int | None
    ) -> tuple[Merchant, Site | None]:
        own = self.owner.merchant_id
        if own is None:
            raise ApplicationError("forbidden", "Only a merchant's API key can create offers.")
        if merchant_id not in (None, own):
            raise invalid("Offers are created for the key's own merchant.", merchant_id="unknown")
        merchant = Merchant.objects.get(pk=own)
        site = None
        if site_id is not None:
            site = Site.objects.filter(pk=site_id, merchant=merchant).first()
            if site is None:
                raise invalid("Unknown site.", site_id="unknown")
        return merchant, site


class OfferApi(ApiView):
    required_scope = {"GET": READ, "PATCH": "offers"}

    @extend_schema(operation_id="getOffer", summary="Get an offer", responses={200: s.OfferSerializer})
    def get(self, request, offer_id: int):
        return Response(s.OfferSerializer(selectors.offer_get(owner=self.owner, offer_id=offer_id)).data)

    @extend_schema(
        operation_id="updateOffer",
        summary="Change an offer",
        request=s.OfferInSerializer,
        responses={200: s.OfferSerializer},
    )
    def patch(self, request, offer_id: int):
        offer = selectors.offer_get_to_change(owner=self.owner, offer_id=offer_id)
        fields = dict(_valid(s.OfferInSerializer, request.data, partial=True))
        if fields.pop("merchant_id", offer.merchant_id) != offer.merchant_id:
            raise invalid("An offer cannot move to another merchant.", merchant_id="read_only")
        if "site_id" in fields:
            fields["site"] = Site.objects.filter(
                pk=fields.pop("site_id"), merchant_id=offer.merchant_id
            ).first()
            if fields["site"] is None:
                raise invalid("Unknown site.", site_id="unknown")
        with others_codes_guard(request):
            offer = services.offer_update(offer=offer, **fields)
        audit_record(api_key=request.auth, action="offer.update", obj=offer, changes=fields)
        return Response(s.OfferSerializer(offer).data)


class OfferStatsApi(ApiView):
    required_scope = READ

    @extend_schema(
        operation_id="getOfferStats", summary="Offer report", responses={200: s.OfferStatsSerializer}
    )
    def get(self, request, offer_id: int):
        offer = selectors.offer_get(owner=self.owner, offer_id=offer_id)
        return Response(s.OfferStatsSerializer(selectors.offer_stats(offer)).data)


# --- coupons of an offer ---------------------------------------------------------------------


class OfferCouponsApi(ApiView):
    required_scope = {"GET": READ, "POST": "offers"}
    pagination_class = CursorOrPagePagination
    cursor_ordering = "id"

    @extend_schema(
        operation_id="listCoupons",
        summary="List an offer's codes",
        parameters=[s.CouponFilterSerializer],
        responses={200: s.CouponSerializer(many=True)},
    )
    def get(self, request, offer_id: int):
        offer = selectors.offer_get(owner=self.owner, offer_id=offer_id)
        filters = _valid(s.CouponFilterSerializer, request.query_params)
        coupons = Coupon.objects.filter(offer=offer)
        if "member" in filters:
            coupons = coupons.filter(member_id=filters["member"])
        if "job" in filters:
            coupons = coupons.filter(job_id=filters["job"])
        if "status" in filters:
            coupons = coupons.filter(_status_filter(filters["status"]))
        return _paginated(self, _coupons(coupons), s.CouponSerializer)

    @extend_schema(
        operation_id="createCoupons",
        summary="Create codes",
        description='Redcat\'s body `{"Members": [1300, 1301], "Multiple": false, "TaskServer": true}` '
        '(`Mulitple` accepted too) or `{"count": N}`. Without TaskServer, and for at most '
        "CODES_IN_REQUEST_MAX codes, they are created in the request (201); otherwise a background job "
        "creates them (202 with the job and `Location: /api/v1/jobs/{id}/`).",
        request=s.CouponsCreateInSerializer,
        responses={201: s.CouponsCreatedSerializer, 202: s.JobSerializer},
    )
    def post(self, request, offer_id: int):
        offer = selectors.offer_get_to_change(owner=self.owner, offer_id=offer_id)
        data = _valid(s.CouponsCreateInSerializer, request.data)
        multiple = data.get("Multiple", data.get("Mulitple", True))
        member_ids, count = data.get("Members"), data.get("count")
        wanted = count if count is not None else len(member_ids)
        if data["TaskServer"] or wanted > settings.CODES_IN_REQUEST_MAX:
            job = jobs.job_generate_start(offer=offer, member_ids=member_ids, multiple=multiple, count=count)
            return _job_accepted(job)
        coupons = services.coupons_create(offer=offer, member_ids=member_ids, multiple=multiple, count=count)
        body = {"count": len(coupons), "results": s.CouponSerializer(coupons, many=True).data}
        return Response(body, status=status.HTTP_201_CREATED)


def _status_filter(wanted: str) -> Q:
    """The status a client sees: an active code past its expiry reads as expired before the sweep marks it."""
    now = timezone.now()
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    if wanted == CouponStatus.ACTIVE:
        return Q(status=CouponStatus.ACTIVE) & live
    if wanted == CouponStatus.EXPIRED:
        return Q(status=CouponStatus.EXPIRED) | (Q(status=CouponStatus.ACTIVE) & ~live)
    return Q(status=wanted)


def _job_accepted(job: Job) -> Response:
    """202 with the job, and where to follow its progress."""
    location = f"/api/v1/jobs/{job.id}/"
    return Response(
        s.JobSerializer(job).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location}
    )


class OfferCouponsCsvApi(ApiView):
    required_scope = READ
    content_negotiation_class = JsonOnlyNegotiation  # a CSV client's Accept must not turn errors into 406

    @extend_schema(
        operation_id="exportCouponsCsv",
        summary="Export every code as CSV",
        description="UTF-8 CSV, streamed: "
        + ", ".join(csv_io.EXPORT_COLUMNS)
        + ". `?bom=1` starts it with a "
        "byte order mark so Excel reads it as UTF-8.",
        parameters=[OpenApiParameter("bom", OpenApiTypes.STR, enum=["0", "1", "true", "false"])],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The codes.")},
    )
    def get(self, request, offer_id: int):
        offer = selectors.offer_get(owner=self.owner, offer_id=offer_id)
        bom = request.query_params.get("bom", "0").lower()
        if bom not in ("0", "1", "true", "false"):
            raise invalid("bom is 1 or 0.", bom="invalid")
        response = StreamingHttpResponse(
            csv_io.coupons_csv_stream(offer=offer, bom=bom in ("1", "true")),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="{csv_io.coupons_csv_filename(offer)}"'
        return response


class OfferCodesImportApi(ApiView):
    required_scope = "offers"
    parser_classes = [MultiPartParser, CsvBodyParser]

    @staticmethod
    def max_body_bytes() -> int:
        return settings.CSV_IMPORT_MAX_BYTES

    def before_transaction(self, request, offer_id: int) -> None:
        # The file is read and every row checked before the write transaction opens (SQLite's write lock).
        offer = selectors.offer_get_to_change(owner=self.owner, offer_id=offer_id)
        upload = request.data.get("file") if hasattr(request.data, "get") else None
        if isinstance(request.data, bytes):
            file, filename = request.data, ""
        elif upload is not None and hasattr(upload, "read"):
            file, filename = upload, upload.name or ""
        else:
            raise invalid(
                "Upload the CSV as the multipart field 'file' or as a text/csv body.", file="required"
            )
        with others_codes_guard(request):
            self.import_write = csv_io.codes_import_prepare(offer=offer, file=file, filename=filename)

    @extend_schema(
        operation_id="importCodes",
        summary="Import your own codes from CSV",
        description="One code a row, optional header, optional member id and expiry columns; UTF-8, "
        "Windows-1252 or UTF-16 (with or without a BOM), separated by commas, semicolons or tabs. All or "
        "nothing: a refused file answers 400 with `error.rows` = [{row, code, reason, message}]. A large file "
        "is imported by a background job (202).",
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            },
            "text/csv": {"type": "string", "format": "binary"},
        },  # fmt: skip
        responses={201: s.ImportResultSerializer, 202: s.JobSerializer},
    )
    def post(self, request, offer_id: int):
        with others_codes_guard(request):
            result = self.import_write()  # the file read and checked by before_transaction
        if isinstance(result, Job):
            return _job_accepted(result)
        return Response(s.ImportResultSerializer(result.as_dict()).data, status=status.HTTP_201_CREATED)


ISSUE_RESPONSES = {
    201: OpenApiResponse(s.CouponSerializer, description="A new code was issued."),
    200: OpenApiResponse(s.CouponSerializer, description="The identifier already had this code."),
    409: error_response(409, "`offer_inactive`, `not_started`, `expired` or `sold_out`."),
}


class OfferIssueApi(ApiView):
    required_scope = "issue"

    @extend_schema(
        operation_id="issueCoupon",
        summary="Create or retrieve the code of an identifier",
        request=s.IssueInSerializer,
        responses=ISSUE_RESPONSES,
    )
    def post(self, request, offer_id: int):
        offer = selectors.offer_get(owner=self.owner, offer_id=offer_id)
        data = _valid(s.IssueInSerializer, request.data)
        if "competition_entry_id" in data:
            data["competition_entry_id"] = str(data["competition_entry_id"])
        coupon, created = services.coupon_issue(offer=offer, owner=self.owner, **data)
        return Response(s.CouponSerializer(coupon).data, status=201 if created else 200)


class CustomerEngagementCouponApi(ApiView):
    """Talon.One's create-or-retrieve as a GET: it writes, so it honours X-DRY-RUN like any write."""

    required_scope = "issue"
    write_methods = frozenset({"GET"})
    http_method_names = ["get", "options"]  # a HEAD would mint a code too

    @extend_schema(
        operation_id="issueCustomerEngagementCoupon",
        summary="Create or retrieve a code (Talon.One style)",
        parameters=[s.CustomerEngagementQuerySerializer],
        responses=ISSUE_RESPONSES,
    )
    def get(self, request):
        query = _valid(s.CustomerEngagementQuerySerializer, request.query_params)
        if "identifier" not in query:
            # A GET that minted a new code on every call would hand out codes to link prefetchers and retries.
            raise invalid("An identifier is required for create-or-retrieve.", identifier="required")
        offer = selectors.offer_get(owner=self.owner, offer_id=query["campaignId"])
        if offer.external_id != query["externalCampaignId"] or query["applicationId"] not in (
            offer.merchant_id, offer.site_id,
        ):  # fmt: skip
            raise not_found("Offer")
        coupon, created = services.coupon_issue(offer=offer, owner=self.owner, identifier=query["identifier"])
        return Response(s.CouponSerializer(coupon).data, status=201 if created else 200)


# --- codes -----------------------------------------------------------------------------------


class CodeApi(ApiView):
    required_scope = LOOKUP
    counts_unknown_codes = True

    @extend_schema(operation_id="getCode", summary="Query a code", responses={200: s.CodeSerializer})
    def get(self, request, code: str):
        with unknown_code_guard(request):
            coupon = selectors.coupon_get_by_code(owner=self.owner, code=code)
        return Response(s.CodeSerializer(coupon).data)


class CodeValidateApi(ApiView):
    required_scope = ("validate", "redeem")
    service_is_atomic = True  # it only reads
    counts_unknown_codes = True

    @extend_schema(
        operation_id="validateCode",
        summary="Validate a code against an order",
        description="Writes nothing. A refusal is `valid: false` with the error; an unknown code is 404.",
        request=s.ValidateInSerializer,
        responses={200: s.ValidationAnswerSerializer},
    )
    def post(self, request):
        data = s.validated(s.ValidateInSerializer, request.data)
        order = services.order_parse(**s.order_fields(data))
        with unknown_code_guard(request):
            result = services.coupon_validate(
                owner=self.owner, code=data["code"], order=order, member_id=data.get("member_id"),
            )  # fmt: skip
        error = {"code": result.error.code, "message": result.error.message} if result.error else None
        answer = {
            "valid": result.valid, "code": result.coupon.code, "offer_id": result.coupon.offer_id,
            "discount_amount": result.discount_amount, "free_shipping": result.free_shipping, "error": error,
        }  # fmt: skip
        return Response(s.rendered(s.ValidationAnswerSerializer, answer))


class CodeRedeemApi(ApiView):
    required_scope = "redeem"
    service_is_atomic = True
    counts_unknown_codes = True

    @extend_schema(
        operation_id="redeemCode",
        summary="Redeem a code for an order",
        request=s.RedeemInSerializer,
        responses={
            201: OpenApiResponse(s.RedemptionSerializer, description="The code was used for this order."),
            200: OpenApiResponse(
                s.RedemptionSerializer,
                description="This (code, order_id) was already redeemed: the first use.",
            ),
            409: error_response(409),
        },
    )
    def post(self, request):
        data = s.validated(s.RedeemInSerializer, request.data)
        order = services.order_parse(**s.order_fields(data))
        with unknown_code_guard(request):
            redemption, created = services.coupon_redeem(
                owner=self.owner, code=data["code"], order_id=data["order_id"], order=order,
                location=data.get("location"), member_id=data.get("member_id"),
            )  # fmt: skip
        if not created:
            # A repeat answers the first use, read again with its code and location; a new use already
            # holds both, so the hot path spends no query on its own answer.
            redemption = _redemptions(Redemption.objects.filter(pk=redemption.pk)).get()
        return Response(s.rendered(s.RedemptionSerializer, redemption), status=201 if created else 200)


class CodeViewApi(ApiView):
    required_scope = "issue"
    counts_unknown_codes = True

    @extend_schema(
        operation_id="viewCode",
        summary="Record that the shopper saw the code",
        request=s.ViewInSerializer,
        responses={200: s.CouponSerializer},
    )
    def post(self, request, code: str):
        data = _valid(s.ViewInSerializer, request.data)
        with unknown_code_guard(request):
            coupon = selectors.coupon_get_by_code(owner=self.owner, code=code)
        coupon = services.coupon_view(coupon=coupon, session_id=data.get("session_id"))
        return Response(s.CouponSerializer(coupon).data)


# --- redemptions -----------------------------------------------------------------------------


def _redemption_get(owner: selectors.Owner, redemption_id: int) -> Redemption:
    redemption = _redemptions(selectors.redemptions_visible_to(owner).filter(pk=redemption_id)).first()
    if redemption is None:
        raise not_found("Redemption")
    return redemption


class RedemptionsApi(ApiView):
    required_scope = "read"
    pagination_class = IdCursorPagination

    @extend_schema(
        operation_id="listRedemptions",
        summary="Find redemptions (reconciliation)",
        description="The key's redemptions, newest first, filtered by order, code and time (`since` inclusive, "
        "`until` exclusive); rolled-back ones included, with `rolled_back_at`. Paged by `cursor`: follow `next`.",
        parameters=[s.RedemptionFilterSerializer],
        responses={200: s.RedemptionSerializer(many=True)},
    )
    def get(self, request):
        filters = _valid(s.RedemptionFilterSerializer, request.query_params)
        redemptions = selectors.redemptions_find(owner=self.owner, **filters)
        return _paginated(self, _redemptions(redemptions), s.RedemptionSerializer)


class RedemptionApi(ApiView):
    required_scope = ("read", "redeem")

    @extend_schema(
        operation_id="getRedemption", summary="Get a redemption", responses={200: s.RedemptionSerializer}
    )
    def get(self, request, redemption_id: int):
        return Response(s.RedemptionSerializer(_redemption_get(self.owner, redemption_id)).data)


class RedemptionRollbackApi(ApiView):
    required_scope = "redeem"

    @extend_schema(
        operation_id="rollbackRedemption",
        summary="Roll back a redemption (order cancelled)",
        request=None,
        responses={200: s.RedemptionSerializer, 409: error_response(409, "`already_rolled_back`.")},
    )
    def post(self, request, redemption_id: int):
        redemption = services.redemption_rollback(redemption=_redemption_get(self.owner, redemption_id))
        audit_record(api_key=request.auth, action="redemption.rollback", obj=redemption)
        return Response(s.RedemptionSerializer(_redemption_get(self.owner, redemption.pk)).data)


# --- members ---------------------------------------------------------------------------------


class MembersApi(ApiView):
    required_scope = {"GET": "read", "POST": ("issue", "offers")}

    @extend_schema(
        operation_id="listMembers",
        summary="List members",
        parameters=[
            OpenApiParameter("member_no", str),
            OpenApiParameter("external_id", str),
            OpenApiParameter("email", str),
        ],
        responses={200: s.MemberSerializer(many=True)},
    )
    def get(self, request):
        members = selectors.member_profiles_of(self.owner).order_by("member_id")
        for name in ("member_no", "external_id", "email"):
            if name in request.query_params:
                members = members.filter(**{name: request.query_params[name]})
        return _paginated(self, members, s.MemberSerializer)

    @extend_schema(
        operation_id="createMember",
        summary="Create a member",
        request=s.MemberInSerializer,
        responses={201: s.MemberSerializer},
    )
    def post(self, request):
        member = services.member_create(owner=self.owner, **_valid(s.MemberInSerializer, request.data))
        return Response(s.MemberSerializer(member).data, status=status.HTTP_201_CREATED)


class MemberApi(ApiView):
    required_scope = "read"

    @extend_schema(operation_id="getMember", summary="Get a member", responses={200: s.MemberSerializer})
    def get(self, request, member_id: int):
        return Response(s.MemberSerializer(services.member_get(owner=self.owner, member_id=member_id)).data)


class MemberCouponsApi(ApiView):
    required_scope = "read"
    pagination_class = CursorOrPagePagination
    cursor_ordering = "id"

    @extend_schema(
        operation_id="listMemberCoupons",
        summary="A member's codes (of the key's offers)",
        responses={200: s.CouponSerializer(many=True)},
    )
    def get(self, request, member_id: int):
        member = services.member_get(owner=self.owner, member_id=member_id).member
        offers = selectors.offers_visible_to(self.owner)
        return _paginated(self, _coupons(member.coupons.filter(offer__in=offers)), s.CouponSerializer)


class MemberRedemptionsApi(ApiView):
    required_scope = "read"
    pagination_class = CursorOrPagePagination

    @extend_schema(
        operation_id="listMemberRedemptions",
        summary="A member's redemptions (of the key's offers)",
        responses={200: s.RedemptionSerializer(many=True)},
    )
    def get(self, request, member_id: int):
        member = services.member_get(owner=self.owner, member_id=member_id).member
        redemptions = selectors.redemptions_visible_to(self.owner).filter(member=member)
        return _paginated(self, _redemptions(redemptions), s.RedemptionSerializer)


# --- jobs ------------------------------------------------------------------------------------


class JobApi(ApiView):
    required_scope = READ

    @extend_schema(
        operation_id="getJob",
        summary="A background job's state and progress",
        responses={200: s.JobSerializer},
    )
    def get(self, request, job_id: int):
        job = Job.objects.filter(pk=job_id, offer__in=selectors.offers_visible_to(self.owner)).first()
        if job is None:
            raise not_found("Job")
        others_codes = job.params.get("others_codes", 0) if isinstance(job.params, dict) else 0
        others_codes_count_once(request, counted_as=f"job:{job.pk}", misses=others_codes)
        return Response(s.JobSerializer(job).data)


# --- API keys --------------------------------------------------------------------------------


class ApiKeysApi(ApiView):
    required_scope = "keys"
    secret_fields = ("key",)

    @extend_schema(
        operation_id="listApiKeys",
        summary="List the owner's API keys",
        responses={200: s.ApiKeySerializer(many=True)},
    )
    def get(self, request):
        keys = selectors.api_keys_of(self.owner).order_by("-id")
        return _paginated(self, keys, s.ApiKeySerializer)

    @extend_schema(
        operation_id="createApiKey",
        summary="Create an API key",
        description="For the key's own owner, with scopes the key holds itself. The answer carries the full key "
        "(`key`); it is never shown again.",
        request=s.ApiKeyInSerializer,
        responses={201: s.ApiKeyCreatedSerializer},
    )
    def post(self, request):
        fields = _valid(s.ApiKeyInSerializer, request.data)
        key, token = services.api_key_create_with(acting=request.auth, **fields)
        audit_record(api_key=request.auth, action="api_key.create", obj=key, changes=fields)
        return Response({**s.ApiKeyCreatedSerializer(key).data, "key": token}, status=status.HTTP_201_CREATED)


def _api_key_answer(key: ApiKey) -> Response:
    return Response(s.ApiKeySerializer(key).data)


class ApiKeyApi(ApiView):
    required_scope = "keys"

    @extend_schema(operation_id="getApiKey", summary="Get an API key", responses={200: s.ApiKeySerializer})
    def get(self, request, key_id: int):
        return _api_key_answer(selectors.api_key_get(owner=self.owner, key_id=key_id))


class ApiKeyRevokeApi(ApiView):
    required_scope = "keys"

    @extend_schema(
        operation_id="revokeApiKey",
        summary="Revoke an API key",
        description="Refused everywhere within API_KEY_CACHE_SECONDS (at once by the process answering). "
        "Revoking a revoked key changes nothing.",
        request=None,
        responses={200: s.ApiKeySerializer},
    )
    def post(self, request, key_id: int):
        key = selectors.api_key_get(owner=self.owner, key_id=key_id)
        if services.api_key_revoke(key=key, acting=request.auth):
            audit_record(api_key=request.auth, action="api_key.revoke", obj=key)
        return _api_key_answer(key)
