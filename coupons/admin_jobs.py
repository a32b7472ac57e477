"""Admin for code jobs: progress bars, and generating, importing and exporting an offer's codes."""

import re

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from coupons import csv_io, jobs
from coupons.errors import ApplicationError
from coupons.models import Job, Offer

CAN_MAKE_CODES = ("coupons.add_coupon", "coupons.add_job")
CAN_EXPORT = ("coupons.view_coupon",)
JOBS_SHOWN = 20


@admin.display(description="Progress")
def job_progress(job: Job) -> str:
    """A progress bar with done / total, as the API's job resource reports them."""
    return format_html(
        '<progress value="{}" max="{}" style="width:10em;vertical-align:middle"></progress> {} / {} ({} %)',
        job.done,
        max(job.total, 1),
        f"{job.done:,}",
        f"{job.total:,}",
        job.progress_percent,
    )


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "offer", "state", job_progress, "created_at", "finished_at")
    list_filter = ("state", "kind")
    list_select_related = ("offer",)
    search_fields = ("=id", "offer__name")
    fields = readonly_fields = ["id", "kind", "offer", "state", job_progress, "done", "total", "chunks_summary",
                                "error", "import_errors", "created_at", "started_at", "heartbeat_at", "finished_at"]  # fmt: skip
    actions = ["retry"]

    def has_add_permission(self, request):
        return False  # jobs are started from an offer (admin action, API or generate_codes)

    @admin.display(description="Chunks")
    def chunks_summary(self, job: Job) -> str:
        counts = dict(job.chunks.values_list("state").annotate(n=Count("id")))
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"

    @admin.display(description="Rejected rows")
    def import_errors(self, job: Job) -> str:
        rows = (job.params or {}).get("errors") or []
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((r["row"], r["code"], r["message"]) for r in rows),
        )
        return format_html("<table><tr><th>Row</th><th>Code</th><th>Reason</th></tr>{}</table>", body)

    @admin.action(
        description="Retry the selected failed jobs from where they stopped", permissions=["change"]
    )
    def retry(self, request, queryset):
        for job in queryset:
            try:
                jobs.job_retry(job=job)
            except ApplicationError as error:
                self.message_user(request, f"Job {job.id}: {error.message}", level=messages.ERROR)
            else:
                self.log_change(request, job, "Retried (admin action).")
                self.message_user(request, f"Job {job.id} queued again.", level=messages.SUCCESS)


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(
        required=False, min_value=1, max_value=settings.JOB_MAX_CODES, help_text="Codes with no member."
    )
    members = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        help_text="Or member ids, one code each (separated by commas, spaces or new lines).",
    )
    multiple = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Untick to give no second code to a member who already holds a live code of the offer.",
    )

    def clean_members(self) -> list[int] | None:
        text = self.cleaned_data["members"].strip()
        if not text:
            return None
        words = [w for w in re.split(r"[\s,;]+", text) if w]
        if not all(w.isascii() and w.isdigit() for w in words):
            raise forms.ValidationError("Member ids are whole numbers.")
        return [int(w) for w in words]

    def clean(self):
        data = super().clean()
        if (data.get("count") is None) == (data.get("members") is None) and not self.errors:
            raise forms.ValidationError("Give either a number of codes or member ids.")
        return data


class ImportCodesForm(forms.Form):
    file = forms.FileField(
        help_text="CSV (UTF-8, Windows-1252 or UTF-16; commas, semicolons or tabs): one code a row; "
        "optional columns member id and expiry."
    )


def _code_jobs_field(request: HttpRequest):
    """A read-only field of the offer page: its code jobs with their progress, and what the user may start."""

    def code_jobs(offer: Offer) -> str:
        context = {
            "offer": offer,
            "jobs": [(job, job_progress(job)) for job in offer.jobs.order_by("-id")[:JOBS_SHOWN]],
            "can_make_codes": request.user.has_perms(CAN_MAKE_CODES),
            "can_export": request.user.has_perms(CAN_EXPORT),
        }
        return render_to_string("admin/coupons/offer/code_jobs.html", context)

    code_jobs.short_description = "Code jobs"
    return code_jobs


def _csv_response(offer: Offer) -> StreamingHttpResponse:
    # With a BOM: from the admin the file is most often opened in Excel.
    response = StreamingHttpResponse(
        csv_io.coupons_csv_stream(offer=offer, bom=True), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{csv_io.coupons_csv_filename(offer)}"'
    return response


class OfferCodesAdminMixin:
    """Generate, import and export an offer's codes from its admin, and show its jobs (the services do the work)."""

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            # The same callable for the whole request: Django matches readonly fields by identity.
            if not hasattr(request, "_offer_code_jobs"):
                request._offer_code_jobs = _code_jobs_field(request)
            readonly.append(request._offer_code_jobs)
        return readonly

    def get_actions(self, request):
        actions = super().get_actions(request)
        mine = []
        if request.user.has_perms(CAN_MAKE_CODES):
            mine += ["generate_codes", "import_codes"]
        if request.user.has_perms(CAN_EXPORT):
            mine.append("export_codes_csv")
        for name in mine:
            actions[name] = self.get_action(name)
        return actions

    def get_urls(self):
        view = self.admin_site.admin_view
        urls = [
            path(
                "<path:object_id>/import-codes/",
                view(self.import_codes_view),
                name="coupons_offer_import_codes",
            ),
            path(
                "<path:object_id>/generate-codes/",
                view(self.generate_codes_view),
                name="coupons_offer_generate_codes",
            ),
            path(
                "<path:object_id>/codes.csv", view(self.export_codes_view), name="coupons_offer_export_codes"
            ),
        ]
        return urls + super().get_urls()

    @admin.action(description="Generate codes…")
    def generate_codes(self, request: HttpRequest, queryset):
        form = GenerateCodesForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            self._generate(request, list(queryset), form)
            return None  # back to the offer list, with a message per offer
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        return self._generate_page(request, form, list(queryset), selected=selected)

    def generate_codes_view(self, request: HttpRequest, object_id: str):
        offer = self._offer_for(request, object_id, CAN_MAKE_CODES)
        form = GenerateCodesForm(request.POST or None)
        if form.is_bound and form.is_valid() and self._generate(request, [offer], form):
            return HttpResponseRedirect(reverse("admin:coupons_offer_change", args=[offer.pk]))
        return self._generate_page(request, form, [offer])

    def _generate_page(
        self, request: HttpRequest, form, offers: list[Offer], selected=None
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Generate codes",
            "form": form,
            "offers": offers,
            "opts": self.model._meta,
            "selected": selected,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/coupons/offer/generate_codes.html", context)

    def _generate(self, request: HttpRequest, offers: list[Offer], form: GenerateCodesForm) -> int:
        """Start a job per offer; returns how many started (refusals are shown as messages)."""
        started = 0
        for offer in offers:
            try:
                job = jobs.job_generate_start(
                    offer=offer, count=form.cleaned_data["count"], member_ids=form.cleaned_data["members"],
                    multiple=form.cleaned_data["multiple"],
                )  # fmt: skip
            except ApplicationError as error:
                self.message_user(request, f"{offer}: {error.message}", level=messages.ERROR)
                continue
            started += 1
            self.log_change(request, offer, f"Started job {job.pk} generating {job.total} codes (admin).")
            link = reverse("admin:coupons_job_change", args=[job.pk])
            self.message_user(
                request,
                format_html('{}: job <a href="{}">{}</a> makes {} codes.', offer, link, job.pk, job.total),
                level=messages.SUCCESS,
            )
        return started

    def _offer_for(self, request: HttpRequest, object_id: str, permissions: tuple[str, ...]) -> Offer:
        offer = get_object_or_404(Offer.objects.select_related("site"), pk=object_id)
        if not request.user.has_perms(permissions) or not self.has_view_permission(request, offer):
            raise PermissionDenied
        return offer

    def _one_offer(self, request: HttpRequest, queryset, purpose: str) -> Offer | None:
        offers = list(queryset[:2])
        if len(offers) != 1:
            self.message_user(request, f"Select exactly one offer to {purpose}.", level=messages.ERROR)
            return None
        return offers[0]

    @admin.action(description="Export codes as CSV")
    def export_codes_csv(self, request: HttpRequest, queryset):
        offer = self._one_offer(request, queryset, "export its codes")
        return _csv_response(offer) if offer else None

    def export_codes_view(self, request: HttpRequest, object_id: str):
        return _csv_response(self._offer_for(request, object_id, CAN_EXPORT))

    @admin.action(description="Import codes…")
    def import_codes(self, request: HttpRequest, queryset):
        offer = self._one_offer(request, queryset, "import codes into")
        return (
            HttpResponseRedirect(reverse("admin:coupons_offer_import_codes", args=[offer.pk]))
            if offer
            else None
        )

    def import_codes_view(self, request: HttpRequest, object_id: str):
        offer = self._offer_for(request, object_id, CAN_MAKE_CODES)
        form = ImportCodesForm(request.POST or None, request.FILES or None)
        rejected = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = csv_io.codes_import(offer=offer, file=upload, filename=upload.name)
            except csv_io.ImportRejected as error:
                rejected = error
            except ApplicationError as error:
                form.add_error("file", error.message)
            else:
                self.log_change(request, offer, f"Imported codes from {upload.name} (admin).")
                self._import_done_message(request, result)
                return HttpResponseRedirect(reverse("admin:coupons_offer_change", args=[offer.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import codes into {offer}",
            "form": form,
            "offer": offer,
            "opts": self.model._meta,
            "rejected": rejected,
            "max_mb": settings.CSV_IMPORT_MAX_BYTES // (1024 * 1024),
        }
        return TemplateResponse(request, "admin/coupons/offer/import_codes.html", context)

    def _import_done_message(self, request: HttpRequest, result) -> None:
        if isinstance(result, Job):
            link = reverse("admin:coupons_job_change", args=[result.pk])
            message = format_html(
                'The file is large: job <a href="{}">{}</a> imports its {} rows.',
                link,
                result.pk,
                result.total,
            )
        else:
            message = f"{result.imported} codes imported."
        self.message_user(request, message, level=messages.SUCCESS)
