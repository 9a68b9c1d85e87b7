from django.contrib import admin
from django.urls import include, path, re_path

from certctl import health, metrics_view
from notifications.api import errors

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", metrics_view.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("notifications.api.urls")),
    re_path(r"^api/", errors.api_not_found),
    path("", include("notifications.web.urls")),
]

# Under /api/ these answer in the API's JSON error shape; elsewhere they are Django's pages.
handler400 = "notifications.api.errors.bad_request"
handler403 = "notifications.api.errors.permission_denied"
handler404 = "notifications.api.errors.page_not_found"
handler500 = "notifications.api.errors.server_error"
