"""Handing work to the cluster once a transaction commits, coalesced so that a burst queues one task.

A create or requeue asks for a "kick": a `deliver_pending` task that claims everything pending in batches
and delivers it at full concurrency (notifications.engine.passes). While a kick is queued and has not started,
further requests add nothing; the kick clears the mark as it starts, before it claims, so an event
committed after that start asks for a new kick and none is ever left waiting for the schedule.

The mark is a database row, so the rule holds across web processes, workers and hosts, and on both
brokers. A mark older than KICK_STALE is ignored: a kick lost with its broker, or queued behind long
passes, costs one more kick rather than a wait for the next scheduled pass.
"""
import contextlib
import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from notifications.engine.breaker import paused_destinations
from notifications.models import DeliveryKick, NotificationEvent, Status

log = logging.getLogger("notifications.dispatch")

KICK_TASK = "deliver_pending"
RETRY_SWEEP_TASK = "notifications.tasks.retry_sweep"
KICK_STALE = timedelta(seconds=5)


def deliver_soon() -> None:
    """Ask for delivery of what is pending once the current transaction commits (at once outside one)."""
    transaction.on_commit(request_kick)


def request_kick(now: datetime | None = None) -> bool:
    """Queue a kick unless a fresh one is queued already. True when this call queued it."""
    now = now or timezone.now()
    try:
        if not _mark_queued(now):
            return False
    except DatabaseError as exc:
        # Better a second kick than none: the mark only saves work.
        log.warning("could not read the delivery kick mark (%s); queueing a kick anyway", exc)
    if enqueue(KICK_TASK):
        return True
    with contextlib.suppress(DatabaseError):  # stale after KICK_STALE anyway
        DeliveryKick.objects.filter(id=1, queued_at=now).update(queued_at=None)
    return False


def _mark_queued(now: datetime) -> bool:
    """Set the mark unless a fresh one is there, in one statement (the row is created on first use: a test
    database flushed between tests has lost it). True when this call set it."""
    table = connection.ops.quote_name(DeliveryKick._meta.db_table)
    stamp, fresh = (connection.ops.adapt_datetimefield_value(moment) for moment in (now, now - KICK_STALE))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, queued_at) VALUES (1, %s) "
            f"ON CONFLICT (id) DO UPDATE SET queued_at = excluded.queued_at "
            f"WHERE {table}.queued_at IS NULL OR {table}.queued_at < %s RETURNING id",
            [stamp, fresh],
        )
        return cursor.fetchone() is not None


def kick_started() -> None:
    """Called by the kick before it claims anything: later requests queue a kick of their own."""
    DeliveryKick.objects.filter(id=1).update(queued_at=None)


def wake_retry_sweep() -> None:
    """Bring the retry sweep's scheduled run forward to the earliest retry time when that comes first.

    django-q2 schedules in whole minutes, so a retry due a few seconds after a pass would otherwise wait for
    the next tick; the schedule row is shared by every cluster, and after that run it keeps its interval
    from there. (django-q2 looks at its schedules every 30 s.)"""
    from django_q.models import Schedule

    waiting = NotificationEvent.objects.filter(status=Status.FAILED).exclude(destination__in=paused_destinations())
    due = waiting.aggregate(due=Min("next_retry_at"))["due"]
    if due is not None:
        Schedule.objects.filter(func=RETRY_SWEEP_TASK, next_run__gt=due).update(next_run=due)


def enqueue(task_name: str, *args: object) -> bool:
    """Hand a task to the cluster. A broker outage must not fail the caller: the schedules pick the work up."""
    from django_q.tasks import async_task

    try:
        async_task(f"notifications.tasks.{task_name}", *args, group=task_name)
    except Exception as exc:
        log.warning("could not enqueue %s%s (%s); the next scheduled pass will deliver it", task_name, args, exc)
        return False
    return True
