"""The two periodic passes of DESIGN §4 and the housekeeping (counts, /metrics totals, retention), kept in
django-q2's schedule table by name."""
import math
from datetime import timedelta

from django.conf import settings

SCHEDULES = {
    "certctl: process pending notifications": (
        "notifications.tasks.process_pending",
        "CERTCTL_SCHEDULER_NOTIFICATION_PROCESS_INTERVAL",
    ),
    "certctl: notification retry sweep": ("notifications.tasks.retry_sweep", "CERTCTL_NOTIFICATION_RETRY_INTERVAL"),
    "certctl: notification housekeeping": (
        "notifications.tasks.housekeeping",
        "CERTCTL_NOTIFICATION_HOUSEKEEPING_INTERVAL",
    ),
}


def schedule_minutes(interval: timedelta) -> int:
    """django-q2 schedules in whole minutes; shorter intervals run every minute."""
    return max(1, math.ceil(interval.total_seconds() / 60))


def ensure_schedules(**kwargs: object) -> None:
    """Create or update each schedule by name (its task too, so that a renamed task reaches existing rows); running
    this twice never duplicates one."""
    from django_q.models import Schedule

    for name, (func, setting) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": schedule_minutes(getattr(settings, setting)),
                "repeats": -1,
            },
        )
