"""Admin for subscriptions (secret shown once, health, test/rotate/recover), deliveries, attempts and events."""

import json

from django import forms
from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html

from audit.admin import confirm_first
from coupons.errors import ApplicationError
from webhooks import services
from webhooks.formats import EVENT_TYPES
from webhooks.models import Attempt, Delivery, Event, Subscription
from webhooks.redaction import headers_redacted, url_redacted
from webhooks.selectors import subscriptions_health
from webhooks.urls_guard import resolve_ahead

FORM_FIELDS = ["name", "url", "format", "events", "http_method", "params", "headers", "active", "site", "offers",
               "merchant", "distributor"]  # fmt: skip


class EventTypeFilter(admin.SimpleListFilter):
    """The five event types, without a DISTINCT over a table that grows by the million."""

    title = "event type"
    parameter_name = "event_type"
    field_path = "type"

    def lookups(self, request, model_admin):
        return list(EVENT_TYPES.items())

    def queryset(self, request, queryset):
        return queryset.filter(**{self.field_path: self.value()}) if self.value() else queryset


class DeliveryEventTypeFilter(EventTypeFilter):
    field_path = "event__type"


class AttemptEventTypeFilter(EventTypeFilter):
    field_path = "delivery__event__type"


class AttemptOutcomeFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [("succeeded", "Succeeded (2xx)"), ("failed", "Failed")]

    def queryset(self, request, queryset):
        succeeded = Q(status_code__gte=200, status_code__lt=300)
        if self.value() == "succeeded":
            return queryset.filter(succeeded)
        if self.value() == "failed":
            return queryset.exclude(succeeded)
        return queryset


def _report(modeladmin, request, outcomes: list[tuple[str, ApplicationError | None]], done: str) -> None:
    """One success message for the lot, one error message per refusal (the service's own words)."""
    for label, error in outcomes:
        if error:
            modeladmin.message_user(request, f"{label}: {error.message}", level=messages.ERROR)
    succeeded = sum(1 for _, error in outcomes if error is None)
    if succeeded:
        modeladmin.message_user(request, done.format(count=succeeded), level=messages.SUCCESS)


def _logged(modeladmin, request, message: str, action):
    """The action, then a LogEntry on its object once it succeeded, so the object's History shows it."""

    def run(obj):
        result = action(obj)
        modeladmin.log_change(request, obj, message)
        return result

    return run


def _each(items, action) -> list[tuple[str, ApplicationError | None]]:
    outcomes = []
    for item in items:
        try:
            action(item)
        except ApplicationError as error:
            outcomes.append((str(item), error))
        else:
            outcomes.append((str(item), None))
    return outcomes


# --- subscriptions -------------------------------------------------------------------------------


class SubscriptionForm(forms.ModelForm):
    url = forms.CharField(max_length=2000, help_text="http:// or https:// URL that receives the webhooks.")
    events = forms.MultipleChoiceField(choices=list(EVENT_TYPES.items()), widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Subscription
        fields = ["name", "url", "format", "events", "http_method", "params", "headers", "merchant",
                  "distributor", "site", "offers", "active"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Credentials are shown masked once saved; a mask sent back unchanged keeps them (the service).
            self.initial["url"] = url_redacted(self.instance.url)
            self.initial["headers"] = headers_redacted(self.instance.headers)

    def clean_params(self):
        return self.cleaned_data.get("params") or {}  # an empty box means no parameters

    def clean_headers(self):
        return self.cleaned_data.get("headers") or {}

    def clean(self):
        data = super().clean()
        probe = Subscription(
            merchant=data.get("merchant"), distributor=data.get("distributor"), site=data.get("site")
        )
        for field, problems in services.subscription_scope_errors(probe, data.get("offers")).items():
            self.add_error("offers" if field == "offer_ids" else field, problems)
        return data


class RecoverSinceForm(forms.Form):
    since = forms.SplitDateTimeField(
        label="Failed deliveries created since", widget=admin.widgets.AdminSplitDateTime
    )


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    """The signing secret is shown once, on the page after creating (or rotating), never in a message or log."""

    form = SubscriptionForm
    list_display = ("__str__", "format", "owner", "active", "circuit", "success_rate", "median_duration",
                    "last_error", "disabled_reason")  # fmt: skip
    list_filter = ("active", "format", "merchant", "distributor")
    search_fields = ("name", "url")
    autocomplete_fields = ("merchant", "distributor", "site", "offers")
    readonly_fields = (
        "secret_hint",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "circuit",
        "created_at",
        "updated_at",
    )
    actions = ["send_test_event", "rotate_secret", "recover_failed_since"]

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # The page's health in three aggregate queries, rather than three per row.
        health = subscriptions_health([s.id for s in changelist.result_list])
        for subscription in changelist.result_list:
            subscription.health = health.get(subscription.id)
        return changelist

    @admin.display(description="owner")
    def owner(self, obj: Subscription) -> str:
        return " / ".join(str(o) for o in (obj.merchant, obj.distributor) if o) or "all offers"

    @admin.display(description="success (24 h)")
    def success_rate(self, obj: Subscription) -> str:
        health = getattr(obj, "health", None)
        if not health or health.success_rate is None:
            return "–"
        return f"{health.success_rate:.1%} of {health.attempts}"

    @admin.display(description="p50")
    def median_duration(self, obj: Subscription) -> str:
        health = getattr(obj, "health", None)
        return f"{health.p50_ms} ms" if health and health.p50_ms is not None else "–"

    @admin.display(description="last error")
    def last_error(self, obj: Subscription) -> str:
        health = getattr(obj, "health", None)
        return (health.last_error[:80] if health else "") or "–"

    @admin.display(description="delivery")
    def circuit(self, obj: Subscription) -> str:
        return obj.circuit_summary()

    @admin.display(description="signing secret")
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The admin saves inside one transaction (on SQLite, the write lock): resolve the URL before it opens.
        if request.method == "POST":
            resolve_ahead(request.POST.get("url"))
        return super().changeform_view(request, object_id, form_url, extra_context)

    def secret_hint(self, obj: Subscription) -> str:
        return "Shown once when created or rotated; use the “Rotate signing secret” action for a new one."

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in FORM_FIELDS if name in form.cleaned_data}
        if change:
            services.subscription_update(subscription=obj, **fields)
            return
        created = services.subscription_create(**fields)
        obj.pk = created.pk
        obj.refresh_from_db()
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        # The service has already saved the offers; saving the form's many-to-many again is not needed.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def response_add(self, request, obj, post_url_continue=None):
        return self._secrets_page(request, [(obj, obj.secret)], "Subscription created")

    def _secrets_page(self, request, secrets: list[tuple[Subscription, str]], title: str):
        # Rendered straight away rather than after a redirect, so a secret never sits in a message cookie.
        context = {
            **self.admin_site.each_context(request),
            "secrets": secrets,
            "opts": self.opts,
            "title": title,
        }
        response = TemplateResponse(request, "admin/webhooks/subscription/secret_once.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request, queryset: QuerySet[Subscription]):
        outcomes = _each(
            queryset,
            _logged(self, request, "Test event sent (admin action).",
                    lambda s: services.subscription_send_test_event(subscription=s)),
        )  # fmt: skip
        _report(self, request, outcomes, "Test event queued for {count} subscription(s); see Deliveries.")

    @admin.action(description="Rotate signing secret", permissions=["change"])
    def rotate_secret(self, request, queryset: QuerySet[Subscription]):
        rotated = [(s, services.subscription_rotate_secret(subscription=s)) for s in queryset]
        for subscription, _ in rotated:
            self.log_change(request, subscription, "Signing secret rotated (admin action).")
        return self._secrets_page(request, rotated, "Signing secrets rotated")

    @admin.action(description="Recover failed deliveries since …", permissions=["change"])
    def recover_failed_since(self, request, queryset: QuerySet[Subscription]):
        form = RecoverSinceForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            context = {**self.admin_site.each_context(request), "form": form, "subscriptions": queryset,
                       "opts": self.opts, "title": "Recover failed deliveries", "media": self.media + form.media,
                       "action": "recover_failed_since", "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}  # fmt: skip
            return TemplateResponse(request, "admin/webhooks/subscription/recover_failed_since.html", context)
        since = form.cleaned_data["since"]
        counts: list[int] = []
        when = timezone.localtime(since).strftime("%Y-%m-%d %H:%M")
        outcomes = _each(
            queryset,
            _logged(self, request, f"Failed deliveries since {when} recovered (admin action).",
                    lambda s: counts.append(services.deliveries_recover_failed_since(subscription=s, since=since))),
        )  # fmt: skip
        done = (
            f"{sum(counts)} failed deliveries since {when} will be sent again" + " ({count} subscription(s))."
        )
        _report(self, request, outcomes, done)
        return None


# --- deliveries, attempts, events ----------------------------------------------------------------


class AttemptInline(admin.TabularInline):
    model = Attempt
    fk_name = "delivery"
    extra = 0
    can_delete = False
    fields = ("started_at", "trigger", "status_code", "duration_ms", "error", "response_excerpt")
    readonly_fields = fields
    ordering = ("-id",)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs are written by the sender alone."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # A row is only ever viewed; "change" on the list unlocks the actions that call services.
        return obj is None and super().has_change_permission(request)


def _pretty_json(data) -> str:
    return format_html(
        "<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(data, indent=2, ensure_ascii=False)
    )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "event_type", "subscription", "status", "attempts", "last_status_code", "next_attempt_at",
                    "created_at", "delivered_at")  # fmt: skip
    list_filter = ("status", DeliveryEventTypeFilter, "subscription", "event__offer")
    search_fields = ("message_id", "=event__uuid", "subscription__name", "subscription__url")
    list_select_related = ("event", "subscription")
    fields = ("subscription", "event", "message_id", "status", "attempts", "manual", "next_attempt_at",
              "claimed_until", "last_status_code", "last_error", "created_at", "delivered_at", "payload")  # fmt: skip
    readonly_fields = fields
    inlines = [AttemptInline]
    actions = ["retry_now", "replay"]

    @admin.display(description="event type", ordering="event__type")
    def event_type(self, obj: Delivery) -> str:
        return obj.event.type

    @admin.display(description="event data")
    def payload(self, obj: Delivery) -> str:
        return _pretty_json(obj.event.data)

    @admin.action(description="Retry now", permissions=["change"])
    def retry_now(self, request, queryset: QuerySet[Delivery]):
        outcomes = _each(
            queryset.select_related("subscription"),
            _logged(
                self,
                request,
                "Retried now (admin action).",
                lambda d: services.delivery_retry_now(delivery=d),
            ),
        )
        _report(self, request, outcomes, "{count} deliveries will be sent again now.")

    @admin.action(
        description="Replay (send the same message again as a new delivery)…", permissions=["change"]
    )
    @confirm_first(
        title="Replay deliveries", button="Replay",
        warning="Each message is sent to its receiver again, as a new delivery. Receivers cannot unsee it.",
    )  # fmt: skip
    def replay(self, request, queryset: QuerySet[Delivery]):
        outcomes = _each(
            queryset.select_related("subscription"),
            _logged(
                self, request, "Replayed (admin action).", lambda d: services.delivery_replay(delivery=d)
            ),
        )
        _report(self, request, outcomes, "{count} deliveries replayed.")


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "delivery",
        "subscription",
        "started_at",
        "trigger",
        "status_code",
        "duration_ms",
        "error",
    )
    list_filter = (
        AttemptOutcomeFilter,
        "trigger",
        "subscription",
        AttemptEventTypeFilter,
        "delivery__event__offer",
    )
    search_fields = ("=delivery__id", "delivery__message_id", "request_url")
    list_select_related = ("delivery", "subscription")
    fields = ("delivery", "subscription", "started_at", "trigger", "request_method", "request_url", "request_body",
              "status_code", "duration_ms", "response_excerpt", "error")  # fmt: skip
    readonly_fields = fields


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    show_change_link = True
    fields = ("subscription", "status", "attempts", "last_status_code", "next_attempt_at", "delivered_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "offer", "created_at", "uuid")
    list_filter = (EventTypeFilter,)
    search_fields = ("=uuid", "=request_id")
    list_select_related = ("offer",)
    fields = ("uuid", "type", "offer", "created_at", "request_id", "payload")
    readonly_fields = fields
    inlines = [DeliveryInline]

    @admin.display(description="data")
    def payload(self, obj: Event) -> str:
        return _pretty_json(obj.data)
