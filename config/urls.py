"""URL routes: admin, REST API with its schema and docs, public reveal pages, health checks."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import health, metrics
from coupons.admin_reports import reports_overview

urlpatterns = [
    # The API first: routes are tried in order and its calls are the most frequent by far.
    path("api/v1/", include("coupons.api.urls")),
    path("api/v1/webhooks/", include("webhooks.api_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # Before admin/: the admin's catch-all would answer this path otherwise.
    path("admin/reports/", admin.site.admin_view(reports_overview), name="admin_reports"),
    path("admin/", admin.site.urls),
    path("c/", include("coupons.public.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A page, not an endpoint: OPTIONS would have it render DRF's description with no template to do it in.
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", http_method_names=["get", "head"]),
        name="api-docs",
    ),
]
