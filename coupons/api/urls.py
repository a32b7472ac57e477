"""Routes of the coupons API under /api/v1/ (the webhook routes live with the webhooks app)."""

from django.urls import path

from coupons.api import views

urlpatterns = [
    # The point-of-sale calls first: routes are tried in order, and these run hundreds of times a second.
    # The fixed code actions come before /codes/{code}, which would otherwise take them for codes.
    path("codes/redeem", views.CodeRedeemApi.as_view(), name="code-redeem"),
    path("codes/validate", views.CodeValidateApi.as_view(), name="code-validate"),
    path("codes/<str:code>", views.CodeApi.as_view(), name="code"),
    path("codes/<str:code>/view", views.CodeViewApi.as_view(), name="code-view"),
    path("offers/", views.OffersApi.as_view(), name="offers"),
    path("offers/<int:offer_id>/", views.OfferApi.as_view(), name="offer"),
    path("offers/<int:offer_id>/stats/", views.OfferStatsApi.as_view(), name="offer-stats"),
    path("offers/<int:offer_id>/coupons/", views.OfferCouponsApi.as_view(), name="offer-coupons"),
    path("offers/<int:offer_id>/coupons.csv", views.OfferCouponsCsvApi.as_view(), name="offer-coupons-csv"),
    path(
        "offers/<int:offer_id>/codes/import", views.OfferCodesImportApi.as_view(), name="offer-codes-import"
    ),
    path("offers/<int:offer_id>/issue", views.OfferIssueApi.as_view(), name="offer-issue"),
    path(
        "customer_engagement/coupon", views.CustomerEngagementCouponApi.as_view(), name="customer-engagement"
    ),
    path("redemptions/", views.RedemptionsApi.as_view(), name="redemptions"),
    path("redemptions/<int:redemption_id>/", views.RedemptionApi.as_view(), name="redemption"),
    path(
        "redemptions/<int:redemption_id>/rollback",
        views.RedemptionRollbackApi.as_view(),
        name="redemption-rollback",
    ),
    path("members/", views.MembersApi.as_view(), name="members"),
    path("members/<int:member_id>/", views.MemberApi.as_view(), name="member"),
    path("members/<int:member_id>/coupons/", views.MemberCouponsApi.as_view(), name="member-coupons"),
    path(
        "members/<int:member_id>/redemptions/",
        views.MemberRedemptionsApi.as_view(),
        name="member-redemptions",
    ),
    path("jobs/<int:job_id>/", views.JobApi.as_view(), name="job"),
    path("keys/", views.ApiKeysApi.as_view(), name="api-keys"),
    path("keys/<int:key_id>/", views.ApiKeyApi.as_view(), name="api-key"),
    path("keys/<int:key_id>/revoke", views.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
]
