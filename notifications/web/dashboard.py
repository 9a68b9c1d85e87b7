"""The dashboard: counts per status, attempts per hour over the last day, each destination's health and state, and
pausing or resuming a destination (a channel's is its environment destination's)."""
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince

from notifications.errors import ServiceError
from notifications.models import Status
from notifications.operations.pausing import pause_destination, resume_destination
from notifications.queries.dashboard import attempts_per_hour
from notifications.queries.destination_health import HEALTH_WINDOW, DestinationListing, destination_states
from notifications.queries.summary import stats_summary
from notifications.web.common import CHANGE_PERMISSION, actor_of, back, change_view, list_url
from notifications.web.forms import TAB_DEAD

CHART_HOURS = 24
CHART_HEIGHT = 160
CHART_SERIES = (
    ("sent", "Sent", "series-sent"),
    ("failed", "Failed attempts", "series-failed"),
    ("dead", "Newly dead", "series-dead"),
)


def outcome_chart(now: datetime) -> dict[str, Any]:
    """Attempts per hour over the last 24 hours, laid out as SVG bars (one group of three per hour)."""
    hours = attempts_per_hour(now, CHART_HOURS)
    peak = max([1] + [hour[key] for hour in hours for key, _, _ in CHART_SERIES])

    group_width, bar_width, left, top = 30, 8, 36, 10
    bars, ticks = [], []
    for index, hour in enumerate(hours):
        x = left + index * group_width + 3
        for offset, (key, label, css) in enumerate(CHART_SERIES):
            height = round(hour[key] / peak * CHART_HEIGHT, 1)
            bars.append({
                "x": x + offset * bar_width, "y": top + CHART_HEIGHT - height, "height": height,
                "width": bar_width - 1, "css": css,
                "title": f"{hour['start']:%H}:00 UTC: {hour[key]} {label.lower()}",
            })
        if index % 3 == 0:
            ticks.append({"x": x + 12, "label": f"{hour['start']:%H}:00"})
    return {
        "hours": hours, "bars": bars, "ticks": ticks, "peak": peak,
        "width": left + CHART_HOURS * group_width + 4, "height": top + CHART_HEIGHT + 24,
        "axis_y": top + CHART_HEIGHT, "top": top, "left": left, "label_y": top + CHART_HEIGHT + 16,
        "legend": [
            {"label": label, "css": css, "total": sum(h[key] for h in hours)} for key, label, css in CHART_SERIES
        ],
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    summary = stats_summary(now=now)
    oldest = summary["oldest_due_retry_at"]
    cards = [
        {
            "label": "Pending", "count": summary["notifications_pending"],
            "url": list_url({"status": Status.PENDING}), "css": "pending",
        },
        {
            "label": "Failed (retrying)", "count": summary["notifications_failed"],
            "url": list_url({"status": Status.FAILED}), "css": "failed",
        },
        {
            "label": "Dead letter", "count": summary["notifications_dead_unacknowledged"],
            "url": list_url({"tab": TAB_DEAD}), "css": "dead",
            "dismissed": summary["notifications_dead"] - summary["notifications_dead_unacknowledged"],
        },
        {
            "label": "Sent", "count": summary["notifications_sent"],
            "url": list_url({"status": Status.SENT}), "css": "sent",
        },
    ]
    return render(request, "notifications/dashboard.html", {
        "summary": summary,
        "cards": cards,
        "oldest_due_age": timesince(oldest, now, depth=2) if oldest else None,
        "chart": outcome_chart(now),
        "destinations": [_with_failure_rate(row) for row in destination_states(now)],
        "can_change": request.user.has_perm(CHANGE_PERMISSION),
        "health_window_days": HEALTH_WINDOW.days,
        "retention": retention_in_words(settings.CERTCTL_NOTIFICATION_RETENTION),
    })


def retention_in_words(retention: timedelta) -> str | None:
    """CERTCTL_NOTIFICATION_RETENTION in words for the dashboard; None when everything is kept."""
    if not retention:
        return None
    if retention % timedelta(days=1):
        return timesince(timezone.now() - retention, timezone.now(), depth=2)
    return f"{retention.days} day{'s' if retention.days != 1 else ''}"


def _with_failure_rate(row: DestinationListing) -> dict[str, Any]:
    attempts, failures = row["attempts_24h"], row["failures_24h"]
    return {**row, "failure_rate": round(100 * failures / attempts) if attempts else None}


@change_view
def destination_pause(request: HttpRequest, name: str) -> HttpResponse:
    try:
        if pause_destination(name, actor_of(request)):
            messages.success(
                request, f"Paused {name}: its notifications wait, spending no retries, until you resume it."
            )
        else:
            messages.info(request, f"{name} was already paused.")
    except ServiceError as exc:
        messages.error(request, f"Not paused: {exc.message}.")
    return back(request, reverse("ui-dashboard"))


@change_view
def destination_resume(request: HttpRequest, name: str) -> HttpResponse:
    try:
        if resume_destination(name, actor_of(request)):
            messages.success(request, f"Resumed {name}: its waiting notifications are delivered now.")
        else:
            messages.info(request, f"{name} was not paused.")
    except ServiceError as exc:
        messages.error(request, f"Not resumed: {exc.message}.")
    return back(request, reverse("ui-dashboard"))
