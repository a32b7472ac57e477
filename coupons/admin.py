"""Admin for offers, coupons, members, redemptions, jobs and API keys; actions call the services."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from audit.admin import confirm_first
from coupons import services
from coupons.admin_jobs import OfferCodesAdminMixin
from coupons.errors import ApplicationError
from coupons.models import (
    ApiKey,
    Coupon,
    Distributor,
    Location,
    Member,
    MemberProfile,
    Merchant,
    Offer,
    Redemption,
    Site,
)


def run_service(modeladmin, request, action, *, success: str) -> bool:
    """Call a service; show its ApplicationError as an admin message instead of a 500."""
    try:
        action()
    except ApplicationError as error:
        modeladmin.message_user(request, error.message, level=messages.ERROR)
        return False
    modeladmin.message_user(request, success, level=messages.SUCCESS)
    return True


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("name",)


@admin.register(Distributor)
class DistributorAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "created_at")
    search_fields = ("name",)


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "merchant", "timezone", "uuid")
    search_fields = ("name", "uuid")
    autocomplete_fields = ("merchant",)
    readonly_fields = ("uuid",)


@admin.register(Location)
class LocationAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "site")
    search_fields = ("name",)
    autocomplete_fields = ("site",)


class MemberProfileInline(admin.TabularInline):
    """Each owner's own record of the member; none of them sees another's."""

    model = MemberProfile
    extra = 0
    fields = (
        "merchant",
        "distributor",
        "member_no",
        "email",
        "external_id",
        "attributes",
        "uuid",
        "created_at",
    )
    readonly_fields = ("uuid", "created_at")
    autocomplete_fields = ("merchant", "distributor")


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ("id", "created_at")
    search_fields = (
        "=id",
        "profiles__member_no",
        "profiles__email",
        "profiles__external_id",
        "=profiles__uuid",
    )
    readonly_fields = ("created_at",)
    inlines = [MemberProfileInline]


class OfferAdminForm(forms.ModelForm):
    """Runs the offer service's cross-field rules and shows their errors on the form."""

    class Meta:
        model = Offer
        fields = ["name", "external_id", "merchant", "site", "distributors", "active_status", "start_date",
                  "finish_date", "coupon_type", "discount_value", "currency", "applicable_on", "applicable_filters",
                  "min_order_amount", "usage_limit_type", "max_redemptions_per_code", "max_redemptions_per_member",
                  "expiry_type", "expiry_value", "expiry_unit", "mystery_discounts", "code_length", "code_alphabet",
                  "code_prefix", "code_pattern", "vanity_code", "content_gate", "issue_from_pool"]  # fmt: skip

    def _post_clean(self):
        super()._post_clean()
        try:
            services.offer_check(self.instance)
        except ApplicationError as error:
            for name, problems in (error.fields or {None: [error.message]}).items():
                field = name if name in self.fields else None
                self.add_error(field, error.message if field else f"{error.message} ({name}: {problems})")


@admin.register(Offer)
class OfferAdmin(OfferCodesAdminMixin, admin.ModelAdmin):
    list_display = ("id", "name", "merchant", "coupon_type", "discount_value", "active_status", "start_date",
                    "finish_date")  # fmt: skip
    list_filter = ("active_status", "coupon_type", "merchant", "site")
    search_fields = ("name", "external_id", "=id", "=uuid")
    autocomplete_fields = ("merchant", "site", "distributors")
    readonly_fields = ("uuid", "public_token", "created_at", "updated_at")
    date_hierarchy = "created_at"

    form = OfferAdminForm

    def save_model(self, request, obj, form, change):
        # The form already ran the service's checks; the service still owns the write.
        if change:
            fields = {
                name: form.cleaned_data[name] for name in form.changed_data if name in services.OFFER_FIELDS
            }
            services.offer_update(offer=obj, **fields)
            obj.refresh_from_db()
        else:
            fields = {
                name: value for name, value in form.cleaned_data.items() if name in services.OFFER_FIELDS
            }
            saved = services.offer_create(merchant=obj.merchant, **fields)
            obj.pk, obj.uuid, obj.public_token = saved.pk, saved.uuid, saved.public_token


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("code", "offer", "member", "status", "times_redeemed", "max_redemptions", "issued_at",
                    "expires_at")  # fmt: skip
    list_filter = ("status", ("offer", admin.RelatedOnlyFieldListFilter), "issued_at", "expires_at")
    search_fields = ("=code", "member__profiles__member_no", "member__profiles__email", "identifier")
    autocomplete_fields = ("offer", "member")
    readonly_fields = ("uuid", "times_redeemed", "job", "created_at", "updated_at", "viewed_at")
    list_select_related = ("offer", "member")
    show_full_result_count = False  # counting millions of codes on every page load is slow
    actions = ["deactivate"]

    @admin.action(description="Deactivate the selected codes…", permissions=["change"])
    @confirm_first(
        title="Deactivate codes", button="Deactivate",
        warning="The selected codes stop working at once. This cannot be undone.",
    )  # fmt: skip
    def deactivate(self, request, queryset):
        for coupon in queryset:
            services.coupon_deactivate(coupon=coupon)
            self.log_change(request, coupon, "Deactivated (admin action).")
        self.message_user(request, f"{queryset.count()} codes deactivated.")


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    list_display = ("id", "coupon", "order_id", "order_value", "currency", "discount_amount", "location",
                    "redeemed_at", "rolled_back_at")  # fmt: skip
    list_filter = ("redeemed_at", "rolled_back_at", "currency", "merchant")
    search_fields = ("order_id", "=coupon__code", "member__profiles__member_no", "member__profiles__email")
    autocomplete_fields = ("coupon", "member", "location", "merchant", "distributor")
    readonly_fields = [f.name for f in Redemption._meta.fields]
    list_select_related = ("coupon", "location")
    actions = ["rollback"]

    def has_add_permission(self, request):
        return False  # redemptions come from the API, one row per use

    @admin.action(description="Roll back the selected redemptions (order cancelled)…", permissions=["change"])
    @confirm_first(
        title="Roll back redemptions", button="Roll back",
        warning="Each use is given back to its code, as if the order had been cancelled. This cannot be undone.",
    )  # fmt: skip
    def rollback(self, request, queryset):
        for redemption in queryset:
            done = run_service(
                self, request, lambda r=redemption: services.redemption_rollback(redemption=r),
                success=f"Redemption {redemption.id} rolled back.",
            )  # fmt: skip
            if done:
                self.log_change(request, redemption, "Rolled back (admin action).")


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in ApiKey.SCOPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "merchant", "distributor", "scopes", "expires_at", "revoked_at"]

    def clean(self):
        data = super().clean()
        if not data.get("merchant") and not data.get("distributor"):
            raise forms.ValidationError("An API key belongs to a merchant or a distributor.")
        expires_at = data.get("expires_at")
        if self.instance.pk is None and expires_at is not None and expires_at <= timezone.now():
            # An existing key may be given a past expiry (it ends now); a new one would be born dead.
            self.add_error("expires_at", "A new key's expiry is in the future.")
        return data


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made by the service; the full key is shown once, on the page after "Save", never again."""

    form = ApiKeyForm
    list_display = (
        "name",
        "prefix",
        "merchant",
        "distributor",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    autocomplete_fields = ("merchant", "distributor")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, token = services.api_key_create(
            merchant=obj.merchant, distributor=obj.distributor, scopes=obj.scopes, name=obj.name,
            expires_at=obj.expires_at,
        )  # fmt: skip
        obj.pk = key.pk
        obj.refresh_from_db()
        obj._state.adding = False
        request.api_key_token = token  # read by response_add, kept nowhere else

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered straight away rather than after a redirect, so the key never sits in a message cookie.
        context = {**self.admin_site.each_context(request), "key": obj, "token": request.api_key_token,
                   "opts": self.opts, "title": "API key created"}  # fmt: skip
        response = TemplateResponse(request, "admin/coupons/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response
