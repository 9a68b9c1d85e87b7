from django.contrib import admin
from django.urls import include, path

from certctl import health

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("admin/", admin.site.urls),
    path("", include("django_prometheus.urls")),
]
