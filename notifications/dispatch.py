"""Handing work to the cluster once a transaction commits, coalesced so that a burst queues one task.

A create or requeue asks for a "kick": a `deliver_pending` task that claims everything pending in batches
and delivers it at full concurrency (notifications.delivery). While a kick is queued and has not started,
further requests add nothing; the kick clears the mark as it starts, before it claims, so an event
committed after that start asks for a new kick and none is ever left waiting for the schedule.

The mark is a database row, so the rule holds across web processes, workers and hosts, and on both
brokers. A mark older than KICK_STALE is ignored: a kick lost with its broker, or queued behind long
passes, costs one more kick rather than a wait for the next scheduled pass.
"""
import logging
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from notifications.models import DeliveryKick

log = logging.getLogger("notifications.dispatch")

KICK_TASK = "deliver_pending"
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
    try:
        DeliveryKick.objects.filter(id=1, queued_at=now).update(queued_at=None)
    except DatabaseError:
        pass  # stale after KICK_STALE anyway
    return False


def _mark_queued(now: datetime) -> bool:
    fresh = now - KICK_STALE
    if DeliveryKick.objects.filter(Q(queued_at__isnull=True) | Q(queued_at__lt=fresh), id=1).update(queued_at=now):
        return True
    # The row is made by the migration; a test database flushed between tests has lost it.
    _, created = DeliveryKick.objects.get_or_create(id=1, defaults={"queued_at": now})
    return created


def kick_started() -> None:
    """Called by the kick before it claims anything: later requests queue a kick of their own."""
    DeliveryKick.objects.filter(id=1).update(queued_at=None)


def enqueue(task_name: str, *args: object) -> bool:
    """Hand a task to the cluster. A broker outage must not fail the caller: the schedules pick the work up."""
    from django_q.tasks import async_task

    try:
        async_task(f"notifications.tasks.{task_name}", *args, group=task_name)
    except Exception as exc:
        log.warning("could not enqueue %s%s (%s); the next scheduled pass will deliver it", task_name, args, exc)
        return False
    return True
