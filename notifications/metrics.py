"""Prometheus series about notifications, read from the database when /metrics is scraped.

Deliveries and passes run in qcluster workers, often in other processes or on other hosts than
the web process that answers the scrape, so nothing here is counted in process memory: every
series is derived from the tables all processes share. Why, and what it costs:
docs/decisions/0001-delivery-metrics-across-processes.md. Every series: docs/metrics.md.
"""
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import Error as DatabaseError
from django.db import connection, transaction
from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from notifications import counts as event_counts
from notifications.models import (
    AttemptOutcome,
    Channel,
    ChannelCondition,
    ChannelState,
    DeliveryTotal,
    LastPass,
    MetricsFold,
    NotificationAttempt,
    NotificationEvent,
    Status,
)

if TYPE_CHECKING:
    from notifications.delivery import PassReport

log = logging.getLogger("notifications.metrics")

DEAD_LETTERED = "dead_lettered"
DELIVERY_OUTCOMES = (*AttemptOutcome.values, DEAD_LETTERED)
DURATION_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 30000)
# A scrape must answer within Prometheus' scrape timeout (10 s by default) and never hold the
# database for long, however large the attempts table grows.
STATEMENT_TIMEOUT_MS = 5000
# Folding more often than this would cost a query per pass for a handful of rows.
FOLD_EVERY = timedelta(minutes=1)


def pass_finished(report: "PassReport", finished_at: datetime) -> None:
    """Called by every worker after each pending pass and retry sweep: keep its figures, fold old attempts."""
    try:
        LastPass.objects.bulk_create(
            [LastPass(kind=report.kind, finished_at=finished_at, duration_seconds=report.duration_s, claimed=report.claimed)],
            update_conflicts=True, unique_fields=["kind"], update_fields=["finished_at", "duration_seconds", "claimed"],
        )
        fold_delivery_totals()
    except DatabaseError as exc:
        # The deliveries of the pass are recorded already; only /metrics lags until the next pass.
        log.warning("could not record the %s pass figures for /metrics: %s", report.kind, exc, extra={"pass": report.kind})


def fold_boundary(now):
    """Attempts that started before this are final: their rows are written within one lease of the start,
    and an hour more covers clock skew between worker hosts."""
    return now - settings.CERTCTL_NOTIFICATION_LEASE - timedelta(hours=1)


def fold_delivery_totals(now=None):
    """Add the attempts that became final since the last fold to DeliveryTotal. One worker at a time; others skip."""
    boundary = fold_boundary(now or timezone.now())
    with transaction.atomic():
        MetricsFold.objects.bulk_create([MetricsFold(id=1)], ignore_conflicts=True)
        state = MetricsFold.objects.filter(id=1)
        if connection.features.has_select_for_update_skip_locked:
            state = state.select_for_update(skip_locked=True)
        fold = state.first()
        if fold is None:
            return  # another worker is folding right now
        folded_before = fold.attempts_folded_before
        if folded_before is not None and boundary - folded_before < FOLD_EVERY:
            return
        attempts = NotificationAttempt.objects.filter(started_at__lt=boundary)
        if folded_before is not None:
            attempts = attempts.filter(started_at__gte=folded_before)
        for (channel, outcome), new in _sum_attempts(attempts).items():
            total, _ = DeliveryTotal.objects.select_for_update().get_or_create(
                channel=channel, outcome=outcome,
                defaults={"duration_buckets": [0] * len(DURATION_BUCKETS_MS)},
            )
            total.attempts += new.attempts
            total.dead_lettered += new.dead_lettered
            total.duration_ms_sum += new.duration_ms_sum
            total.duration_buckets = [a + b for a, b in zip(total.duration_buckets, new.duration_buckets, strict=True)]
            total.save()
        MetricsFold.objects.filter(id=1).update(attempts_folded_before=boundary)


@dataclass
class _Sums:
    attempts: int = 0
    dead_lettered: int = 0
    duration_ms_sum: int = 0
    duration_buckets: list = field(default_factory=lambda: [0] * len(DURATION_BUCKETS_MS))

    def add(self, other):
        self.attempts += other.attempts
        self.dead_lettered += other.dead_lettered
        self.duration_ms_sum += other.duration_ms_sum
        self.duration_buckets = [a + b for a, b in zip(self.duration_buckets, other.duration_buckets, strict=True)]


def _sum_attempts(attempts):
    """{(channel, outcome): _Sums} over an attempts queryset, in one GROUP BY."""
    buckets = {f"le_{limit}": Count("id", filter=Q(duration_ms__lte=limit)) for limit in DURATION_BUCKETS_MS}
    rows = attempts.order_by().values("event__channel", "outcome").annotate(
        n=Count("id"), dead=Count("id", filter=Q(resulting_status=Status.DEAD)), total_ms=Sum("duration_ms"), **buckets
    )
    return {
        (row["event__channel"], row["outcome"]): _Sums(
            attempts=row["n"], dead_lettered=row["dead"], duration_ms_sum=row["total_ms"] or 0,
            duration_buckets=[row[key] for key in buckets],
        )
        for row in rows
    }


class DatabaseCollector:
    """A prometheus_client collector that queries the database on every scrape.

    When the database cannot answer, the database-derived series are left out and
    certctl_notification_db_up is 0, so that the scrape itself still succeeds.
    """

    def collect(self):
        try:
            families = self._read_database(timezone.now())
            up = 1
        except DatabaseError as exc:
            log.warning("metrics: database unavailable, database series left out of this scrape: %s: %s", type(exc).__name__, exc)
            families, up = [], 0
        yield from families
        yield GaugeMetricFamily(
            "certctl_notification_db_up",
            "1 when every database query of this scrape succeeded; 0 when the database series are missing.",
            value=up,
        )

    def _read_database(self, now):
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT set_config('statement_timeout', %s, true)", [str(STATEMENT_TIMEOUT_MS)])
            return [
                *self._event_families(now),
                *self._delivery_families(),
                *self._pass_families(),
                self._channel_family(),
            ]

    def _channel_family(self):
        rows = {channel: (opened_at, paused_at) for channel, opened_at, paused_at in
                ChannelState.objects.values_list("channel", "opened_at", "paused_at")}
        family = GaugeMetricFamily(
            "certctl_notification_channel_state",
            "1 for each channel's current state: closed (deliveries flow), open (circuit breaker) or paused (by an operator).",
            labels=["channel", "state"],
        )
        for channel in Channel.values:
            opened_at, paused_at = rows.get(channel, (None, None))
            current = ChannelCondition.PAUSED if paused_at else ChannelCondition.OPEN if opened_at else ChannelCondition.CLOSED
            for condition in ChannelCondition.values:
                family.add_metric([channel, condition], 1 if condition == current else 0)
        return family

    def _event_families(self, now):
        by_group = event_counts.by_group()
        counts = {(status, channel): 0 for status in Status.values for channel in Channel.values}
        for (channel, status, _), n in by_group.items():
            counts[(status, channel)] += n
        events = GaugeMetricFamily(
            "certctl_notifications", "Notification events now in each delivery status, per channel.",
            labels=["status", "channel"],
        )
        for (status, channel), n in counts.items():
            events.add_metric([status, channel], n)
        # certctl's name, kept for its dashboards; a gauge, because the queue shrinks on requeue (DESIGN §8 fault 10).
        dead = GaugeMetricFamily(
            "certctl_notification_dead_total", "Events in the dead-letter queue now.",
            value=sum(n for (status, _), n in counts.items() if status == Status.DEAD),
        )
        # What the dead-letter alert fires on: dead events no operator has dismissed (marked read) yet.
        dead_unacknowledged = GaugeMetricFamily(
            "certctl_notification_dead_unacknowledged", "Dead events no operator has dismissed (marked read) yet.",
            value=event_counts.matching({"status": Status.DEAD}, by_group),
        )
        oldest_due = NotificationEvent.objects.filter(next_retry_at__lte=now).aggregate(  # only failed events have one
            t=Min("next_retry_at")
        )["t"]
        oldest = GaugeMetricFamily(
            "certctl_notification_oldest_due_retry_age_seconds",
            "How long the oldest due retry has been waiting for a worker; 0 when none is due.",
            value=(now - oldest_due).total_seconds() if oldest_due else 0,
        )
        leases = GaugeMetricFamily(
            "certctl_notification_leases_held", "Events claimed by a worker right now (lease not yet expired).",
            # Claims take pending events and failed ones whose retry time had come (and keeps until the lease
            # ends): their partial indexes bound the count to those, not the history.
            value=NotificationEvent.objects.filter(
                Q(status=Status.PENDING) | Q(next_retry_at__lte=now), claimed_until__gt=now
            ).count(),
        )
        return [events, dead, dead_unacknowledged, oldest, leases]

    def _delivery_families(self):
        folded_before, totals = self._folded_totals()
        sums = {(channel, outcome): _Sums() for channel in Channel.values for outcome in AttemptOutcome.values}
        for total in totals:
            sums[(total.channel, total.outcome)].add(
                _Sums(total.attempts, total.dead_lettered, total.duration_ms_sum, total.duration_buckets)
            )
        recent = NotificationAttempt.objects.all()
        if folded_before:
            recent = recent.filter(started_at__gte=folded_before)
        for key, new in _sum_attempts(recent).items():
            sums[key].add(new)

        deliveries = {(channel, outcome): 0 for channel in Channel.values for outcome in DELIVERY_OUTCOMES}
        histogram = {channel: _Sums() for channel in Channel.values}
        for (channel, outcome), total in sums.items():
            deliveries[(channel, outcome)] += total.attempts
            deliveries[(channel, DEAD_LETTERED)] += total.dead_lettered
            histogram[channel].add(total)
        counter = CounterMetricFamily(
            "certctl_notification_deliveries",
            "Delivery attempts by channel and outcome; dead_lettered counts the attempts that moved an event to dead.",
            labels=["channel", "outcome"],
        )
        for (channel, outcome), n in deliveries.items():
            counter.add_metric([channel, outcome], n)
        durations = HistogramMetricFamily(
            "certctl_notification_delivery_duration_seconds", "Time spent in one delivery attempt.", labels=["channel"]
        )
        for channel, total in histogram.items():
            durations.add_metric(
                [channel],
                buckets=[(str(limit / 1000), n) for limit, n in zip(DURATION_BUCKETS_MS, total.duration_buckets, strict=True)]
                + [("+Inf", total.attempts)],
                sum_value=total.duration_ms_sum / 1000,
            )
        return [counter, durations]

    def _folded_totals(self):
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

    def _pass_families(self):
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
        for last in LastPass.objects.order_by("kind"):
            duration.add_metric([last.kind], last.duration_seconds)
            rows.add_metric([last.kind], last.claimed)
            finished.add_metric([last.kind], last.finished_at.timestamp())
        return [duration, rows, finished]
