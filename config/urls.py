"""URL routes: admin, REST API with its schema and docs, public reveal pages, health checks."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
]
