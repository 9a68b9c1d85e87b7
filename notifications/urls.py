from django.contrib.auth import views as auth_views
from django.urls import path, register_converter

from notifications import views


class EventIdConverter:
    """An id an event could have: 1 to 64 characters, no slash, no NUL. Any other is a 404 before a view runs."""

    regex = "[^/\x00]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(EventIdConverter, "event_id")

# Names carry a "ui-" prefix: the REST API's router owns "notification-list" and friends.
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="ui-dashboard"),
    path("channels/<str:channel>/pause/", views.channel_pause, name="ui-channel-pause"),
    path("channels/<str:channel>/resume/", views.channel_resume, name="ui-channel-resume"),
    path("notifications/", views.notification_list, name="ui-notifications"),
    path("notifications/requeue-selected/", views.requeue_selected, name="ui-requeue-selected"),
    path("notifications/requeue-matching/", views.requeue_matching, name="ui-requeue-matching"),
    path("notifications/dismiss-selected/", views.dismiss_selected, name="ui-dismiss-selected"),
    path("notifications/dismiss-matching/", views.dismiss_matching, name="ui-dismiss-matching"),
    path("notifications/requeue-group/", views.requeue_group, name="ui-requeue-group"),
    path("notifications/dismiss-group/", views.dismiss_group, name="ui-dismiss-group"),
    path("notifications/export.csv", views.export_csv, name="ui-export"),
    path("notifications/<event_id:event_id>/", views.notification_detail, name="ui-notification"),
    path("notifications/<event_id:event_id>/requeue/", views.requeue, name="ui-requeue"),
    path("notifications/<event_id:event_id>/read/", views.mark_read, name="ui-mark-read"),
]
