"""Retention: sent events older than CERTCTL_NOTIFICATION_RETENTION go, with their attempts and operator actions.

Dead, failed and pending events are never purged by age: they still need an operator or a worker. The purge
deletes in chunks, each its own short transaction, oldest first, so that no statement holds the tables for
long and an interrupted purge simply continues next time. It only reaches attempts that /metrics has already
folded into its totals (notifications.metrics), so that the delivery counters never go down; the event
counts follow by themselves (notifications.counts).
"""
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from notifications import counts, metrics
from notifications.models import MetricsFold, NotificationAttempt, NotificationEvent, OperatorAction, Status

log = logging.getLogger("notifications.retention")

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


def purge(older_than: timedelta, now: datetime | None = None, dry_run: bool = False, deadline: float | None = None) -> PurgeReport:
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


def housekeeping(now: datetime | None = None) -> dict[str, Any]:
    """The periodic task: fold the /metrics totals, fold the event counts, then purge what retention lets go.

    In this order so that the purge finds the attempts it removes already folded into the /metrics totals.
    """
    now = now or timezone.now()
    metrics.fold_delivery_totals(now)
    folded = counts.fold()
    retention: timedelta = settings.CERTCTL_NOTIFICATION_RETENTION
    result: dict[str, Any] = {"count_rows_folded": folded}
    if retention:
        # Half the task timeout: django-q2 would kill the task at the full one.
        deadline = time.monotonic() + settings.Q_CLUSTER["timeout"] / 2
        result["purge"] = purge(retention, now, deadline=deadline).as_dict()
    return result
