"""Every live destination with its delivery state: whether it can deliver (and why not), its circuit breaker or
pause, and its latest success and failure. The dashboard's table, the channel listings (a channel's is its
environment destination's) and the REST destinations listing read it."""
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, TypedDict

from django.db.models import Count, Max, Q
from django.utils import timezone

from notifications.errors import DestinationNotFound
from notifications.models import AttemptOutcome, Channel, Destination, DestinationState, NotificationAttempt
from notifications.notifiers import destination_problem

# How far back a destination's last success and last failure are looked for: the attempts of a week, read through
# the started_at index, never the whole history.
HEALTH_WINDOW = timedelta(days=7)
FAILURE = ~Q(outcome=AttemptOutcome.SUCCESS)


def live_destinations() -> list[Destination]:
    """The live destinations: the environment ones first (in channel order), then the stored ones by name."""
    rows = {destination.name: destination for destination in Destination.objects.live()}
    # A flushed test database has lost the environment rows; their configuration is the settings anyway.
    environment = [
        rows.pop(channel) if channel in rows else Destination(name=channel, channel=channel, from_environment=True)
        for channel in Channel.values
    ]
    return [*environment, *sorted(rows.values(), key=lambda destination: destination.name)]


def destination_named(name: str) -> Destination:
    """The live destination of this exact name; DestinationNotFound when there is none (or it was removed)."""
    found = Destination.objects.live().filter(name=name).first()
    if found is None and name in Channel.values:
        Destination.objects.ensure_environment()
        found = Destination.objects.live().filter(name=name).first()
    if found is None:
        raise DestinationNotFound(name)
    return found


class DestinationListing(TypedDict):
    name: str
    channel: str
    from_environment: bool
    enabled: bool
    configured: bool
    problem: str | None  # why it cannot deliver (its events are dead-lettered); None when configured
    state: str  # DestinationCondition: closed, open (circuit breaker) or paused
    since: datetime | None  # when it was paused, else when its breaker opened
    opened_at: datetime | None
    next_probe_at: datetime | None  # of an open breaker that is not paused
    paused_at: datetime | None
    paused_by: str | None
    consecutive_failures: int
    last_success_at: datetime | None  # within HEALTH_WINDOW
    last_failure_at: datetime | None  # within HEALTH_WINDOW
    last_error: str
    attempts_24h: int
    failures_24h: int


def destination_states(now: datetime | None = None) -> list[DestinationListing]:
    """Every live destination (environment ones first, then stored ones by name) with its breaker or pause state
    and its latest outcomes."""
    now = now or timezone.now()
    destinations = live_destinations()
    states = {state.destination_id: state for state in DestinationState.objects.all()}
    outcomes = _recent_outcomes(now)
    listing = []
    for destination in destinations:
        state = states.get(destination.name) or DestinationState()
        recent = outcomes.get(destination.name, {})
        problem = destination_problem(destination)
        last_success, last_failure, last_error = _latest(destination.name, recent, now)
        listing.append(DestinationListing(
            name=destination.name,
            channel=destination.channel,
            from_environment=destination.from_environment,
            enabled=destination.enabled,
            configured=problem is None,
            problem=problem,
            state=state.state,
            since=state.paused_at or state.opened_at,
            opened_at=state.opened_at,
            next_probe_at=state.next_probe_at if state.opened_at and not state.paused_at else None,
            paused_at=state.paused_at,
            paused_by=state.paused_by or None,
            consecutive_failures=state.consecutive_failures,
            last_success_at=last_success,
            last_failure_at=last_failure,
            last_error=last_error,
            attempts_24h=recent.get("attempts_24h", 0),
            failures_24h=recent.get("failures_24h", 0),
        ))
    return listing


def _recent_outcomes(now: datetime) -> dict[str, Mapping[str, Any]]:
    """Per destination, over the last day's attempts: the last success and failure, the attempts and failures."""
    rows = (
        NotificationAttempt.objects.filter(started_at__gte=now - timedelta(hours=24))
        .order_by()
        .values("event__destination")
        .annotate(
            last_success=Max("started_at", filter=Q(outcome=AttemptOutcome.SUCCESS)),
            last_failure=Max("started_at", filter=FAILURE),
            attempts_24h=Count("id"),
            failures_24h=Count("id", filter=FAILURE),
        )
    )
    return {row["event__destination"]: row for row in rows}


def _latest(name: str, recent: Mapping[str, Any], now: datetime) -> tuple[datetime | None, datetime | None, str]:
    """(last success, last failure, its error) within HEALTH_WINDOW: the last day's attempts answer for most
    destinations; only one quiet for a day looks further back."""
    since, window_start = now - timedelta(hours=24), now - HEALTH_WINDOW
    last_success = recent.get("last_success") or _latest_attempt(
        name, Q(outcome=AttemptOutcome.SUCCESS), window_start, since
    )
    last_failure = recent.get("last_failure") or _latest_attempt(name, FAILURE, window_start, since)
    last_error = ""
    if last_failure:
        last_error = (
            NotificationAttempt.objects.filter(FAILURE, event__destination=name, started_at=last_failure)
            .order_by("-id").values_list("error", flat=True).first()
        ) or ""
    return last_success, last_failure, last_error


def _latest_attempt(name: str, outcome: Q, since: datetime, before: datetime) -> datetime | None:
    """The start of the destination's latest attempt matching `outcome` in [since, before), newest first by index."""
    latest: datetime | None = (
        NotificationAttempt.objects.filter(
            outcome, event__destination=name, started_at__gte=since, started_at__lt=before
        ).order_by("-started_at").values_list("started_at", flat=True).first()
    )
    return latest
