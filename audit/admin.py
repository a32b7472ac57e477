"""Admin: the API audit trail (read-only), and the confirmation page of irreversible bulk actions."""

import functools

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.template.response import TemplateResponse

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "object_repr", "actor", "request_id")
    list_filter = ("action", "content_type", ("api_key", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("=object_id", "object_repr", "actor", "=request_id")
    list_select_related = ("content_type",)
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a trail that can be edited proves nothing


def confirmation_page(modeladmin, request, queryset, *, action: str, title: str, warning: str, button: str):
    """The "are you sure?" page of a bulk action, or None once the user has confirmed on it.

    Used by actions that cannot be undone (roll back, deactivate, replay to receivers): the page lists
    the selected objects and posts the same action back with `confirm=yes`.
    """
    if request.POST.get("confirm") == "yes":
        return None
    select_across = request.POST.get("select_across") == "1"
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "warning": warning,
        "button": button,
        "objects": list(queryset[:200]),
        "count": queryset.count(),
        # "Select all N" posts the changelist's filters back instead of N ids.
        "select_across": select_across,
        "selected": [] if select_across else [str(pk) for pk in queryset.values_list("pk", flat=True)],
        "action": action,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "opts": modeladmin.opts,
    }
    return TemplateResponse(request, "admin/confirm_action.html", context)


def confirm_first(*, title: str, warning: str, button: str):
    """Decorates an admin action that cannot be undone: it runs only once the confirmation page was answered."""

    def decorate(action):
        @functools.wraps(action)
        def confirmed(modeladmin, request, queryset):
            page = confirmation_page(
                modeladmin,
                request,
                queryset,
                action=action.__name__,
                title=title,
                warning=warning,
                button=button,
            )
            return page if page is not None else action(modeladmin, request, queryset)

        return confirmed

    return decorate
