"""The operator UI's URLs. Names carry a "ui-" prefix: the REST API's router owns "notification-list" and friends."""
from urllib.parse import unquote

from django.contrib.auth import views as auth_views
from django.urls import path, register_converter

from notifications.queries.events import EVENT_ID_MAX_LENGTH
from notifications.web import actions, dashboard, destinations, pages, routes


class EventIdConverter:
    """Any stored id, even one from before the id rule (models.EVENT_ID_PATTERN), such as `imp/../x`.

    A path segment cannot carry a `/` (a server decodes %2F before routing) nor be `.` or `..` (a browser
    resolves those), so to_url writes `%` as %25, `/` as %2F and such dots as %2E; reverse() escapes the `%`
    once more, and the server's decoding gives back exactly what to_python decodes. An id the rule allows comes
    out as it is. What no event can have (longer than EVENT_ID_MAX_LENGTH, a NUL) is a 404 before a view runs.
    """

    # Each character of an id is at most three in to_url's form (%2F).
    regex = f"[^/\x00]{{1,{3 * EVENT_ID_MAX_LENGTH}}}"

    def to_python(self, value: str) -> str:
        event_id = unquote(value)
        if len(event_id) > EVENT_ID_MAX_LENGTH or "\x00" in event_id:
            raise ValueError(event_id)
        return event_id

    def to_url(self, value: str) -> str:
        if value in (".", ".."):
            return "%2E" * len(value)
        return value.replace("%", "%25").replace("/", "%2F")


register_converter(EventIdConverter, "event_id")

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", dashboard.dashboard, name="ui-dashboard"),
    path("destinations/<str:name>/pause/", dashboard.destination_pause, name="ui-destination-pause"),
    path("destinations/<str:name>/resume/", dashboard.destination_resume, name="ui-destination-resume"),
    path("destinations/", destinations.destination_page, name="ui-destinations"),
    path("destinations/new/", destinations.destination_add, name="ui-destination-add"),
    path("destinations/<str:name>/edit/", destinations.destination_edit, name="ui-destination-edit"),
    path("destinations/<str:name>/test/", destinations.destination_test, name="ui-destination-test"),
    path("destinations/<str:name>/remove/", destinations.destination_remove, name="ui-destination-remove"),
    path("routes/", routes.route_page, name="ui-routes"),
    path("routes/new/", routes.route_add, name="ui-route-add"),
    path("routes/<int:route_id>/edit/", routes.route_edit, name="ui-route-edit"),
    path("routes/<int:route_id>/delete/", routes.route_delete, name="ui-route-delete"),
    path("routes/<int:route_id>/up/", routes.route_move, {"direction": "up"}, name="ui-route-up"),
    path("routes/<int:route_id>/down/", routes.route_move, {"direction": "down"}, name="ui-route-down"),
    path("notifications/", pages.notification_list, name="ui-notifications"),
    path("notifications/requeue-selected/", actions.requeue_selected, name="ui-requeue-selected"),
    path("notifications/requeue-matching/", actions.requeue_matching, name="ui-requeue-matching"),
    path("notifications/dismiss-selected/", actions.dismiss_selected, name="ui-dismiss-selected"),
    path("notifications/dismiss-matching/", actions.dismiss_matching, name="ui-dismiss-matching"),
    path("notifications/requeue-group/", actions.requeue_group, name="ui-requeue-group"),
    path("notifications/dismiss-group/", actions.dismiss_group, name="ui-dismiss-group"),
    path("notifications/export.csv", pages.export_csv, name="ui-export"),
    path("notifications/<event_id:event_id>/", pages.notification_detail, name="ui-notification"),
    path("notifications/<event_id:event_id>/requeue/", actions.requeue, name="ui-requeue"),
    path("notifications/<event_id:event_id>/read/", actions.mark_read, name="ui-mark-read"),
]
