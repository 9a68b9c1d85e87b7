"""Prometheus series about notifications, read from the database when /metrics is scraped
(notifications.queries.metrics). Every series: docs/metrics.md."""
import logging
from collections.abc import Iterator
from datetime import datetime

from django.db import Error as DatabaseError
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from notifications.engine.upkeep import DURATION_BUCKETS_MS, AttemptSums
from notifications.models import AttemptOutcome, DestinationCondition, Status
from notifications.queries.metrics import Figures, figures

log = logging.getLogger("notifications.metrics")

DEAD_LETTERED = "dead_lettered"
DELIVERY_OUTCOMES = (*AttemptOutcome.values, DEAD_LETTERED)


class DatabaseCollector:
    """A prometheus_client collector that queries the database on every scrape.

    When the database cannot answer, the database-derived series are left out and
    certctl_notification_db_up is 0, so that the scrape itself still succeeds.
    """

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        try:
            read = figures(now)
        except DatabaseError as exc:
            log.warning(
                "metrics: database unavailable, database series left out of this scrape: %s: %s",
                type(exc).__name__, exc,
            )
            families, up = [], 0
        else:
            families = [
                *_event_families(read, now), *_delivery_families(read), *_pass_families(read), _state_family(read)
            ]
            up = 1
        yield from families
        yield GaugeMetricFamily(
            "certctl_notification_db_up",
            "1 when every database query of this scrape succeeded; 0 when the database series are missing.",
            value=up,
        )


def _state_family(read: Figures) -> Metric:
    family = GaugeMetricFamily(
        "certctl_notification_channel_state",
        "1 for each destination's current state: closed (deliveries flow), open (circuit breaker) "
        "or paused (by an operator).",
        labels=["channel", "destination", "state"],
    )
    for destination, channel in read.destinations.items():
        opened_at, paused_at = read.destination_states.get(destination, (None, None))
        current = (
            DestinationCondition.PAUSED if paused_at
            else DestinationCondition.OPEN if opened_at
            else DestinationCondition.CLOSED
        )
        for condition in DestinationCondition.values:
            family.add_metric([channel, destination, condition], 1 if condition == current else 0)
    return family


def _event_families(read: Figures, now: datetime) -> list[Metric]:
    events = GaugeMetricFamily(
        "certctl_notifications", "Notification events now in each delivery status, per channel.",
        labels=["status", "channel"],
    )
    for (status, channel), n in read.events.items():
        events.add_metric([status, channel], n)
    # certctl's name, kept for its dashboards; a gauge, because the queue shrinks on requeue (DESIGN §8 fault 10).
    dead = GaugeMetricFamily(
        "certctl_notification_dead_total", "Events in the dead-letter queue now.",
        value=sum(n for (status, _), n in read.events.items() if status == Status.DEAD),
    )
    # What the dead-letter alert fires on: dead events no operator has dismissed (marked read) yet.
    dead_unacknowledged = GaugeMetricFamily(
        "certctl_notification_dead_unacknowledged", "Dead events no operator has dismissed (marked read) yet.",
        value=read.dead_unacknowledged,
    )
    oldest_due = read.oldest_due_retry_at
    oldest = GaugeMetricFamily(
        "certctl_notification_oldest_due_retry_age_seconds",
        "How long the oldest due retry has been waiting for a worker; 0 when none is due.",
        value=(now - oldest_due).total_seconds() if oldest_due else 0,
    )
    leases = GaugeMetricFamily(
        "certctl_notification_leases_held", "Events claimed by a worker right now (lease not yet expired).",
        value=read.leases_held,
    )
    return [events, dead, dead_unacknowledged, oldest, leases]


def _delivery_families(read: Figures) -> list[Metric]:
    deliveries: dict[tuple[str, str, str], int] = {}
    histogram: dict[tuple[str, str], AttemptSums] = {}
    for (destination, channel, outcome), total in read.deliveries.items():
        for counted in DELIVERY_OUTCOMES:
            deliveries.setdefault((channel, destination, counted), 0)
        deliveries[(channel, destination, outcome)] += total.attempts
        deliveries[(channel, destination, DEAD_LETTERED)] += total.dead_lettered
        histogram.setdefault((channel, destination), AttemptSums()).add(total)
    counter = CounterMetricFamily(
        "certctl_notification_deliveries",
        "Delivery attempts by destination and outcome; dead_lettered counts the attempts that moved an event to "
        "dead.",
        labels=["channel", "destination", "outcome"],
    )
    for series, n in deliveries.items():
        counter.add_metric(list(series), n)
    durations = HistogramMetricFamily(
        "certctl_notification_delivery_duration_seconds", "Time spent in one delivery attempt.",
        labels=["channel", "destination"],
    )
    for timed, total in histogram.items():
        durations.add_metric(
            list(timed),
            buckets=[
                *((str(limit / 1000), n) for limit, n in zip(DURATION_BUCKETS_MS, total.duration_buckets, strict=True)),
                ("+Inf", total.attempts),
            ],
            sum_value=total.duration_ms_sum / 1000,
        )
    return [counter, durations]


def _pass_families(read: Figures) -> list[Metric]:
    duration = GaugeMetricFamily(
        "certctl_notification_last_pass_duration_seconds",
        "Duration of the latest pending pass or retry sweep, on any worker.", labels=["pass"],
    )
    rows = GaugeMetricFamily(
        "certctl_notification_last_pass_rows", "Events claimed by the latest pending pass or retry sweep.",
        labels=["pass"],
    )
    finished = GaugeMetricFamily(
        "certctl_notification_last_pass_timestamp_seconds",
        "When the latest pending pass or retry sweep finished, as a Unix time.", labels=["pass"],
    )
    for last in read.last_passes:
        duration.add_metric([last.kind], last.duration_seconds)
        rows.add_metric([last.kind], last.claimed)
        finished.add_metric([last.kind], last.finished_at.timestamp())
    return [duration, rows, finished]
