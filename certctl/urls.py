from django.contrib import admin
from django.urls import include, path
from django_prometheus.exports import ExportToDjangoView

from certctl import health

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", ExportToDjangoView, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("notifications.api.urls")),
    path("", include("notifications.urls")),
]
