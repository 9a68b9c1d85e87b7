from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from notifications.api import errors, schema, views  # noqa: F401  (schema registers the Bearer scheme)

app_name = "api"

router = SimpleRouter(trailing_slash=False)
router.register("notifications", views.NotificationViewSet, basename="notification")
router.register("routes", views.RouteViewSet, basename="route")

urlpatterns = [
    *router.urls,
    path("stats/summary", views.StatsSummaryView.as_view(), name="stats-summary"),
    path("alerts", views.AlertView.as_view(), name="alerts"),
    path("channels", views.ChannelListView.as_view(), name="channel-list"),
    path("channels/<str:name>/pause", views.ChannelPauseView.as_view(pause=True), name="channel-pause"),
    path("channels/<str:name>/resume", views.ChannelPauseView.as_view(pause=False), name="channel-resume"),
    path("destinations", views.DestinationListView.as_view(), name="destination-list"),
    path("destinations/<str:name>", views.DestinationDetailView.as_view(), name="destination-detail"),
    path("destinations/<str:name>/test", views.DestinationTestView.as_view(), name="destination-test"),
    path("destinations/<str:name>/pause", views.DestinationPauseView.as_view(pause=True), name="destination-pause"),
    path("destinations/<str:name>/resume", views.DestinationPauseView.as_view(pause=False), name="destination-resume"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, which the Content-Security-Policy allows.
    path("docs", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    # Last: any other /api/v1 path is a JSON 404, also with DJANGO_DEBUG=true (where handler404 is bypassed).
    re_path(r"^", errors.api_not_found, name="not-found"),
]
