"""The dashboard's chart: attempts per hour over the last day (each destination's health:
notifications.queries.destination_health)."""
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncHour

from notifications.models import AttemptOutcome, NotificationAttempt, Status

# The series of the outcome chart: sent, failed attempts, and attempts that made their event dead.
OUTCOME_SERIES = ("sent", "failed", "dead")


def attempts_per_hour(now: datetime, hours: int) -> list[dict[str, Any]]:
    """The last `hours` hours up to `now`, oldest first: {"start", "sent", "failed", "dead"} each."""
    current_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    first_hour = current_hour - timedelta(hours=hours - 1)
    rows = (
        NotificationAttempt.objects.filter(started_at__gte=first_hour)
        .annotate(hour=TruncHour("started_at", tzinfo=UTC))
        .values("hour")
        .annotate(
            sent=Count("id", filter=Q(outcome=AttemptOutcome.SUCCESS)),
            failed=Count("id", filter=~Q(outcome=AttemptOutcome.SUCCESS)),
            dead=Count("id", filter=Q(resulting_status=Status.DEAD)),
        )
    )
    by_hour = {row["hour"]: row for row in rows}
    per_hour = []
    for index in range(hours):
        start = first_hour + timedelta(hours=index)
        row: Mapping[str, Any] = by_hour.get(start, {})
        per_hour.append({"start": start, **{key: row.get(key, 0) for key in OUTCOME_SERIES}})
    return per_hour
