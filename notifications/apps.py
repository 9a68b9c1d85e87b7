from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from notifications.schedules import ensure_schedules

        post_migrate.connect(ensure_schedules, sender=self, dispatch_uid="notifications.ensure_schedules")

        from notifications.api.auth import check_configuration

        check_configuration()

        from notifications.web import logins

        logins.connect()
