"""The dashboard's figures: attempts per hour over the last day, and each channel's health."""
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q
from django.db.models.functions import TruncHour

from notifications.models import AttemptOutcome, NotificationAttempt, Status
from notifications.notifiers import channel_status

# The series of the outcome chart: sent, failed attempts, and attempts that made their event dead.
OUTCOME_SERIES = ("sent", "failed", "dead")
# How far back the channel table looks for a channel's last success and last failure: the attempts of a
# week, read through the started_at index, never the whole history.
CHANNEL_WINDOW = timedelta(days=7)
FAILURE = ~Q(outcome=AttemptOutcome.SUCCESS)


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


def _latest_attempt(channel: str, outcome: Q, since: datetime, before: datetime) -> datetime | None:
    """The start of the channel's latest attempt matching `outcome` in [since, before), newest first by index."""
    latest: datetime | None = (
        NotificationAttempt.objects.filter(
            outcome, event__channel=channel, started_at__gte=since, started_at__lt=before
        ).order_by("-started_at").values_list("started_at", flat=True).first()
    )
    return latest


def channel_health(now: datetime) -> list[dict[str, Any]]:
    """Per channel: configured or not, last success and last failure within CHANNEL_WINDOW, failure rate over 24 h.

    The last day's attempts answer for most channels; only a channel quiet for a day looks further back.
    """
    since = now - timedelta(hours=24)
    window_start = now - CHANNEL_WINDOW
    stats: dict[str, Mapping[str, Any]] = {
        row["event__channel"]: row
        for row in NotificationAttempt.objects.filter(started_at__gte=since)
        .order_by()
        .values("event__channel")
        .annotate(
            last_success=Max("started_at", filter=Q(outcome=AttemptOutcome.SUCCESS)),
            last_failure=Max("started_at", filter=FAILURE),
            attempts_24h=Count("id"),
            failures_24h=Count("id", filter=FAILURE),
        )
    }
    health = []
    for channel, (configured, missing) in channel_status().items():
        row = stats.get(channel, {})
        last_success = row.get("last_success") or _latest_attempt(
            channel, Q(outcome=AttemptOutcome.SUCCESS), window_start, since
        )
        last_failure = row.get("last_failure") or _latest_attempt(channel, FAILURE, window_start, since)
        last_error = ""
        if last_failure:
            last_error = (
                NotificationAttempt.objects.filter(FAILURE, event__channel=channel, started_at=last_failure)
                .order_by("-id").values_list("error", flat=True).first()
            ) or ""
        attempts, failures = row.get("attempts_24h", 0), row.get("failures_24h", 0)
        health.append({
            "channel": channel, "configured": configured, "missing": missing,
            "last_success": last_success, "last_failure": last_failure, "last_error": last_error,
            "attempts_24h": attempts, "failures_24h": failures,
            "failure_rate": round(100 * failures / attempts) if attempts else None,
        })
    return health
