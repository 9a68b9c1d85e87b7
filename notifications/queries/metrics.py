"""What /metrics reports, read from the tables every process shares when /metrics is scraped (the collector,
notifications.metrics, turns it into Prometheus families).

Deliveries and passes run in qcluster workers, often in other processes or on other hosts than the web process that
answers the scrape, so nothing is counted in process memory. Why, and what it costs:
docs/decisions/0001-delivery-metrics-across-processes.md.
"""
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q

from notifications.engine.upkeep import AttemptSums, sum_attempts
from notifications.models import (
    AttemptOutcome,
    Channel,
    DeliveryTotal,
    Destination,
    DestinationState,
    LastPass,
    MetricsFold,
    NotificationAttempt,
    NotificationEvent,
    Status,
)
from notifications.queries import counts
from notifications.queries.summary import oldest_due_retry

# A scrape must answer within Prometheus' scrape timeout (10 s by default) and never hold the
# database for long, however large the attempts table grows.
STATEMENT_TIMEOUT_MS = 5000


@dataclass(frozen=True)
class Figures:
    events: dict[tuple[str, str], int]  # (status, channel): events now
    dead_unacknowledged: int
    oldest_due_retry_at: datetime | None
    leases_held: int
    # (destination, channel, outcome): every attempt ever, folded and recent
    deliveries: dict[tuple[str, str, str], AttemptSums]
    last_passes: list[LastPass]
    destinations: dict[str, str]  # the live destinations: {name: channel}
    destination_states: dict[str, tuple[datetime | None, datetime | None]]  # destination: (opened_at, paused_at)


def figures(now: datetime) -> Figures:
    """Every figure of a scrape, in one transaction whose statements may each take STATEMENT_TIMEOUT_MS at most."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)])
        by_group = counts.by_group()
        destinations = _live_destinations()
        events = {(status, channel): 0 for status in Status.values for channel in Channel.values}
        for (channel, status, _), n in by_group.items():
            events[(status, channel)] += n
        return Figures(
            events=events,
            dead_unacknowledged=counts.matching({"status": Status.DEAD}, by_group) or 0,
            oldest_due_retry_at=oldest_due_retry(now),
            # Claims take pending events and failed ones whose retry time had come (and keeps until the lease
            # ends): their partial indexes bound the count to those, not the history.
            leases_held=NotificationEvent.objects.filter(
                Q(status=Status.PENDING) | Q(next_retry_at__lte=now), claimed_until__gt=now
            ).count(),
            deliveries=_deliveries(destinations),
            last_passes=list(LastPass.objects.order_by("kind")),
            destinations=destinations,
            destination_states={
                destination: (opened_at, paused_at)
                for destination, opened_at, paused_at in DestinationState.objects.values_list(
                    "destination", "opened_at", "paused_at"
                )
            },
        )


def _live_destinations() -> dict[str, str]:
    """{name: channel} of the live destinations, the environment ones (named after their channel) always."""
    stored = dict(Destination.objects.live().filter(from_environment=False).values_list("name", "channel"))
    return {**{channel: channel for channel in Channel.values}, **stored}


def _deliveries(destinations: dict[str, str]) -> dict[tuple[str, str, str], AttemptSums]:
    """Every live destination's series, zero included, and those of removed destinations that have attempts."""
    folded_before, totals = _folded_totals()
    sums = {
        (name, channel, outcome): AttemptSums()
        for name, channel in destinations.items() for outcome in AttemptOutcome.values
    }
    for total in totals:
        sums.setdefault((total.destination, total.channel, total.outcome), AttemptSums()).add(
            AttemptSums(total.attempts, total.dead_lettered, total.duration_ms_sum, total.duration_buckets)
        )
    recent = NotificationAttempt.objects.all()
    if folded_before:
        recent = recent.filter(started_at__gte=folded_before)
    for key, new in sum_attempts(recent).items():
        sums.setdefault(key, AttemptSums()).add(new)
    return sums


def _folded_totals() -> tuple[datetime | None, list[DeliveryTotal]]:
    """DeliveryTotal and the boundary it was folded up to, as of one moment.

    A fold writes both in one transaction; if one commits between our reads the boundary
    has moved, and the totals are read again (the next fold is at least FOLD_EVERY away).
    """
    boundary = MetricsFold.objects.filter(id=1).values_list("attempts_folded_before", flat=True)
    before = boundary.first()
    totals = list(DeliveryTotal.objects.all())
    after = boundary.first()
    if after != before:
        totals = list(DeliveryTotal.objects.all())
    return after, totals
