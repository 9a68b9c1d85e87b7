"""Claiming due events: a lease stamped on them in one statement, given back when not used, and the time budget a
lease buys (how long a send may take, when a pass stops starting sends).

Step 1 of the delivery protocol (notifications.engine, DESIGN §2 "Delivery guarantee"): in a short transaction, pick
due rows with FOR UPDATE SKIP LOCKED and stamp them with a lease (`claimed_until`, `claim_token`). A worker that
dies before recording leaves leases that expire, and the events are claimed again.
"""
import logging
import secrets
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifications.models import LEASE_RELEASED, NotificationEvent

log = logging.getLogger("notifications.delivery")

# A database error while claiming or recording is retried for this long (well within the lease) before the
# pass gives up; results it could not record are delivered again after their lease.
DATABASE_RETRY_FOR = timedelta(seconds=30)

_ORDER = {"pending": ("created_at", "id"), "retry": ("next_retry_at", "id")}
_PROBE_MARK = "breaker_probe"


def claim_due_events(
    kind: str,
    now: datetime | None = None,
    limit: int | None = None,
    lease: timedelta | None = None,
    *,
    destination: str | None = None,
    held_destinations: Collection[str] = (),
) -> list[NotificationEvent]:
    """Lease up to `limit` due events ("pending" or "retry") to this worker and return them: of `destination` only
    when given, and none of `held_destinations` (open, paused or disabled, notifications.engine.breaker).

    One statement: the inner SELECT walks the kind's partial index in its order and stops after `limit` rows,
    skipping rows another worker is claiming right now (SKIP LOCKED) rather than waiting; the UPDATE stamps
    them and RETURNING hands them back, so the claimed rows are never looked for again. SQLite has no row
    locks, but runs the statement alone.
    """
    now = now or timezone.now()
    limit = limit or settings.CERTCTL_NOTIFICATION_BATCH_SIZE
    lease = lease or settings.CERTCTL_NOTIFICATION_LEASE
    token = secrets.token_hex(16)
    fields = NotificationEvent._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields if f.column)
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    with transaction.atomic():
        due_here = NotificationEvent.objects.due(kind, now)
        if destination:
            due_here = due_here.filter(destination=destination)
        if held_destinations:
            due_here = due_here.exclude(destination__in=held_destinations)
        candidates = due_here.order_by(*_ORDER[kind]).values("id")[:limit]
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        inner_sql, inner_params = candidates.query.sql_with_params()
        until = connection.ops.adapt_datetimefield_value(now + lease)
        # A raw query set reads the RETURNING rows into events as the ORM would (types converted per backend).
        claimed = list(NotificationEvent.objects.raw(
            f"UPDATE {table} SET claimed_until = %s, claim_token = %s WHERE id IN ({inner_sql}) RETURNING {columns}",
            [until, token, *inner_params],
        ))
    first, second = _ORDER[kind]
    claimed.sort(key=lambda event: (getattr(event, first), getattr(event, second)))
    for event in claimed:
        log.debug(
            "claimed event %s for the %s pass until %s", event.id, kind, now + lease,
            extra={"event_id": event.id, "channel": event.channel, "destination": event.destination, "pass": kind},
        )
    return claimed


def release_claims(events: Iterable[NotificationEvent]) -> int:
    """Give back claims this worker will not use, so the next pass takes them now rather than at lease expiry."""
    ids_by_token: dict[str, list[str]] = {}
    for event in events:
        if event.claim_token:
            ids_by_token.setdefault(event.claim_token, []).append(event.id)
    return sum(
        NotificationEvent.objects.filter(claim_token=token, id__in=ids).update(**LEASE_RELEASED)
        for token, ids in ids_by_token.items()
    )


def mark_probe(event: NotificationEvent) -> None:
    """Mark a claimed event as its open destination's probe (notifications.engine.breaker)."""
    setattr(event, _PROBE_MARK, True)


def is_probe(event: NotificationEvent) -> bool:
    """Whether this claimed event is its open destination's probe (notifications.engine.breaker)."""
    return bool(getattr(event, _PROBE_MARK, False))


# --- the time budget ------------------------------------------------------------


def delivery_bound() -> float:
    """The longest one send may take: its connect and read timeouts (the lease is longer, settings check it)."""
    bound: timedelta = settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
    return bound.total_seconds()


def claim_lease() -> timedelta:
    """The lease a pass claims with: room for an event to wait up to one delivery for a send slot, then be
    delivered and its result recorded through a database blip (DATABASE_RETRY_FOR); at most
    CERTCTL_NOTIFICATION_LEASE. A worker killed mid-pass holds its claims this long, not a whole lease."""
    lease: timedelta = settings.CERTCTL_NOTIFICATION_LEASE
    return min(lease, 2 * timedelta(seconds=delivery_bound()) + DATABASE_RETRY_FOR)


def lease_left_to_start() -> timedelta:
    """A send starts only while its event's lease has this long left (what claim_lease grants after one
    delivery's wait), so that its result is recorded before any other worker may claim the event again."""
    return claim_lease() - timedelta(seconds=delivery_bound())


def start_window() -> float:
    """Seconds after a pass begins in which it may still start a delivery. django-q2 kills the task at its
    timeout (90 % of the lease); a delivery started later than this could be cut mid-request there."""
    slowest: timedelta = settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
    timeout: int = settings.Q_CLUSTER["timeout"]
    return timeout - slowest.total_seconds()


def pass_window() -> float:
    """Seconds after a pass begins in which it may start a delivery or stay for a retry:
    CERTCTL_NOTIFICATION_PASS_MAX_DURATION, and never beyond the start window. A pass then ends once its sends
    in flight are done, so it ends at the latest one delivery's connect + read timeout later."""
    longest: timedelta = settings.CERTCTL_NOTIFICATION_PASS_MAX_DURATION
    return min(start_window(), longest.total_seconds())
