"""The dashboard summary: counts per delivery status and the oldest retry that is due but not yet taken."""
from datetime import datetime
from typing import Any

from django.db.models import Min
from django.utils import timezone

from notifications.models import NotificationEvent, Status
from notifications.queries import counts


def oldest_due_retry(now: datetime) -> datetime | None:
    """When the oldest retry that is due at `now` came due; None when none is."""
    # Only failed events have a next_retry_at.
    oldest: datetime | None = NotificationEvent.objects.filter(next_retry_at__lte=now).aggregate(
        t=Min("next_retry_at")
    )["t"]
    return oldest


def stats_summary(now: datetime | None = None) -> dict[str, Any]:
    """Counts per status (from notifications.queries.counts, not a scan of history) and the oldest retry that is due
    but not yet taken."""
    now = now or timezone.now()
    by_group = counts.by_group()
    per_status = dict.fromkeys(Status.values, 0)
    for (_, status, _), n in by_group.items():
        per_status[status] += n
    oldest_due = oldest_due_retry(now)
    return {
        "notifications_total": sum(per_status.values()),
        "notifications_pending": per_status[Status.PENDING],
        "notifications_sent": per_status[Status.SENT],
        "notifications_failed": per_status[Status.FAILED],
        "notifications_dead": per_status[Status.DEAD],
        "notifications_dead_unacknowledged": counts.matching({"status": Status.DEAD}, by_group),
        "notifications_unread": counts.matching({"read": "false"}, by_group),
        "oldest_due_retry_at": oldest_due,
        "oldest_due_retry_age_seconds": int((now - oldest_due).total_seconds()) if oldest_due else None,
        "completed_at": now,
    }
