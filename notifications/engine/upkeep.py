"""Upkeep, the housekeeping task's work: fold the /metrics totals, fold the event counts, purge what retention lets go.

Metrics totals: attempts that started before MetricsFold.attempts_folded_before are summed per destination and outcome
into DeliveryTotal, so that a /metrics scrape reads recent attempts only (docs/decisions/0001).

Event counts: on PostgreSQL the triggers of migration 0007 append delta rows to notification_counts in the
transaction of every change; folding sums them into one row per group, and a recount repairs them. On SQLite, the
embedded single-host default, the events are counted directly and there is nothing to fold.

Retention: sent events older than CERTCTL_NOTIFICATION_RETENTION go, with their attempts and operator actions. Dead,
failed and pending events are never purged by age: they still need an operator or a worker. The purge deletes in
chunks, each its own short transaction, oldest first, so that no statement holds the tables for long and an
interrupted purge simply continues next time. It only reaches attempts already folded into the /metrics totals, so
that the delivery counters never go down; the event counts follow by themselves.
"""
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from notifications.models import (
    DeliveryTotal,
    Group,
    MetricsFold,
    NotificationAttempt,
    NotificationCount,
    NotificationEvent,
    OperatorAction,
    Status,
)

log = logging.getLogger("notifications.retention")

DURATION_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 30000)
# Folding more often than this would cost a query per pass for a handful of rows.
FOLD_EVERY = timedelta(minutes=1)


def housekeeping(now: datetime | None = None) -> dict[str, Any]:
    """The periodic task: fold the /metrics totals, fold the event counts, then purge what retention lets go.

    In this order so that the purge finds the attempts it removes already folded into the /metrics totals.
    """
    now = now or timezone.now()
    fold_delivery_totals(now)
    folded = fold_counts()
    retention: timedelta = settings.CERTCTL_NOTIFICATION_RETENTION
    result: dict[str, Any] = {"count_rows_folded": folded}
    if retention:
        # Half the task timeout: django-q2 would kill the task at the full one.
        deadline = time.monotonic() + settings.Q_CLUSTER["timeout"] / 2
        result["purge"] = purge(retention, now, deadline=deadline).as_dict()
    return result


# --- the /metrics totals ---------------------------------------------------------


def fold_boundary(now: datetime) -> datetime:
    """Attempts that started before this are final: their rows are written within one lease of the start,
    and an hour more covers clock skew between worker hosts."""
    lease: timedelta = settings.CERTCTL_NOTIFICATION_LEASE
    return now - lease - timedelta(hours=1)


def fold_delivery_totals(now: datetime | None = None) -> None:
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
        for (destination, channel, outcome), new in sum_attempts(attempts).items():
            total, _ = DeliveryTotal.objects.select_for_update().get_or_create(
                destination=destination, outcome=outcome,
                defaults={"channel": channel, "duration_buckets": [0] * len(DURATION_BUCKETS_MS)},
            )
            total.attempts += new.attempts
            total.dead_lettered += new.dead_lettered
            total.duration_ms_sum += new.duration_ms_sum
            total.duration_buckets = [a + b for a, b in zip(total.duration_buckets, new.duration_buckets, strict=True)]
            total.save()
        MetricsFold.objects.filter(id=1).update(attempts_folded_before=boundary)


@dataclass
class AttemptSums:
    """Attempts summed: how many, how many moved their event to dead, their durations and duration histogram."""

    attempts: int = 0
    dead_lettered: int = 0
    duration_ms_sum: int = 0
    duration_buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS_MS))

    def add(self, other: "AttemptSums") -> None:
        self.attempts += other.attempts
        self.dead_lettered += other.dead_lettered
        self.duration_ms_sum += other.duration_ms_sum
        self.duration_buckets = [a + b for a, b in zip(self.duration_buckets, other.duration_buckets, strict=True)]


def sum_attempts(attempts: QuerySet[NotificationAttempt]) -> dict[tuple[str, str, str], AttemptSums]:
    """{(destination, channel, outcome): AttemptSums} over an attempts queryset, in one GROUP BY."""
    buckets = {f"le_{limit}": Count("id", filter=Q(duration_ms__lte=limit)) for limit in DURATION_BUCKETS_MS}
    rows = attempts.order_by().values("event__destination", "event__channel", "outcome").annotate(
        n=Count("id"), dead=Count("id", filter=Q(resulting_status=Status.DEAD)), total_ms=Sum("duration_ms"), **buckets
    )
    sums = {}
    for row in rows:
        values: dict[str, Any] = dict(row)
        sums[(values["event__destination"], values["event__channel"], values["outcome"])] = AttemptSums(
            attempts=values["n"], dead_lettered=values["dead"], duration_ms_sum=values["total_ms"] or 0,
            duration_buckets=[values[key] for key in buckets],
        )
    return sums


# --- the event counts ---------------------------------------------------------------


def fold_counts() -> int:
    """Sum the delta rows into one row per group; returns how many rows there were before."""
    if not NotificationCount.objects.maintained():
        return 0
    table = NotificationCount._meta.db_table
    with connection.cursor() as cursor:
        # A concurrent fold or delta is safe: rows this DELETE does not see stay, and each row is summed once.
        cursor.execute(
            f"WITH folded AS (DELETE FROM {table} RETURNING channel, status, unread, events), "
            f"summed AS (INSERT INTO {table} (channel, status, unread, events) "
            "SELECT channel, status, unread, sum(events) FROM folded GROUP BY 1, 2, 3 HAVING sum(events) <> 0) "
            "SELECT count(*) FROM folded"
        )
        folded: int = cursor.fetchone()[0]
        return folded


@dataclass(frozen=True)
class Repair:
    group: Group
    counted: int  # what notification_counts said
    actual: int  # what a recount of the events found


def recount() -> list[Repair]:
    """Replace the counts with a recount of the events; returns the groups that were wrong.

    Writes to events wait for the few hundred milliseconds this takes on a million events, so that no change
    falls between the count and the replacement.
    """
    if not NotificationCount.objects.maintained():
        return []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {NotificationEvent._meta.db_table} IN SHARE MODE")
        before = NotificationCount.objects.by_group()
        actual = NotificationEvent.objects.count_by_group()
        NotificationCount.objects.all().delete()
        NotificationCount.objects.bulk_create(
            NotificationCount(channel=channel, status=status, unread=unread, events=n)
            for (channel, status, unread), n in actual.items()
        )
    return [
        Repair(group, before.get(group, 0), actual.get(group, 0))
        for group in sorted(set(before) | set(actual))
        if before.get(group, 0) != actual.get(group, 0)
    ]


# --- retention -----------------------------------------------------------------------


# Events per transaction: a few tens of milliseconds per statement, at any table size.
PURGE_CHUNK = 2000


@dataclass
class PurgeReport:
    sent_before: datetime | None  # None: nothing can be purged yet (see purge_limit)
    events: int = 0
    attempts: int = 0
    operator_actions: int = 0
    finished: bool = True  # False: stopped at the deadline, the rest goes next time

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent_before": self.sent_before.isoformat() if self.sent_before else None, "events": self.events,
            "attempts": self.attempts, "operator_actions": self.operator_actions, "finished": self.finished,
        }


def purge_limit(older_than: timedelta, now: datetime) -> datetime | None:
    """Events sent before this may go: older than `older_than`, and with every attempt folded into the
    /metrics totals. None while no fold has happened yet."""
    folded_before = MetricsFold.objects.filter(id=1).values_list("attempts_folded_before", flat=True).first()
    if folded_before is None:
        return None
    return min(now - older_than, folded_before)


def _expired(sent_before: datetime) -> QuerySet[NotificationEvent]:
    return NotificationEvent.objects.filter(status=Status.SENT, sent_at__lt=sent_before)


def purge(
    older_than: timedelta, now: datetime | None = None, dry_run: bool = False, deadline: float | None = None
) -> PurgeReport:
    """Delete sent events sent more than `older_than` before `now`, with their attempts and operator actions.

    `deadline` (time.monotonic()) stops the purge between chunks. A dry run counts what would go.
    """
    now = now or timezone.now()
    report = PurgeReport(sent_before=purge_limit(older_than, now))
    if report.sent_before is None:
        return report
    expired = _expired(report.sent_before)
    if dry_run:
        report.events = expired.count()
        report.attempts = NotificationAttempt.objects.filter(event__in=expired.values("id")).count()
        report.operator_actions = OperatorAction.objects.filter(event__in=expired.values("id")).count()
        return report
    while True:
        if deadline is not None and time.monotonic() > deadline:
            report.finished = False
            break
        with transaction.atomic():
            chunk = expired.order_by("sent_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                # An operator marking one of them read right now keeps it until the next purge.
                chunk = chunk.select_for_update(skip_locked=True)
            ids = list(chunk.values_list("id", flat=True)[:PURGE_CHUNK])
            if not ids:
                break
            # The attempts and actions go in one statement each (no signals, nothing below them), then the events.
            _, deleted = NotificationEvent.objects.filter(id__in=ids).delete()
        report.events += deleted.get(NotificationEvent._meta.label, 0)
        report.attempts += deleted.get(NotificationAttempt._meta.label, 0)
        report.operator_actions += deleted.get(OperatorAction._meta.label, 0)
    if report.events:
        log.info(
            "purged %d sent events sent before %s, with %d attempts and %d operator actions%s",
            report.events, report.sent_before.isoformat(), report.attempts, report.operator_actions,
            "" if report.finished else "; the rest goes next time",
            extra={"purged_events": report.events, "purged_attempts": report.attempts},
        )
    return report
