"""Recording: step 3 of the delivery protocol. Finished attempts are written in chunks: one statement applies the
outcomes to the events that still carry our `claim_token`, one insert writes the attempts; a result whose lease was
lost is kept as an attempt but not applied. The breaker counts the chunk in the same transaction."""
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F

from notifications import causes
from notifications.engine import breaker
from notifications.engine.backoff import RetryPolicy, after_failure
from notifications.engine.claims import DATABASE_RETRY_FOR, is_probe
from notifications.engine.sender import Delivery
from notifications.models import (
    LEASE_RELEASED,
    AttemptOutcome,
    NotificationAttempt,
    NotificationEvent,
    Status,
    set_clause,
)

log = logging.getLogger("notifications.delivery")


@dataclass(frozen=True)
class _Outcome:
    """What an attempt does to its event, when the lease is still ours."""

    outcome: str
    status: str
    retry_count: int
    next_retry_at: datetime | None
    last_error: str | None
    sent_at: datetime | None
    # Of an attempt that makes its event dead: the cause and its kind (notifications.causes); else None.
    cause: str | None = None
    cause_kind: str | None = None


def _outcome(delivery: Delivery, policy: RetryPolicy) -> _Outcome:
    event, result = delivery.event, delivery.result
    if result.ok:
        return _Outcome(AttemptOutcome.SUCCESS, Status.SENT, event.retry_count, None, None, delivery.finished_at)
    if is_probe(event) and not result.permanent:
        # A failed probe of an open breaker costs its event no retry; a failed one waits for the next probe.
        wait_until = (
            breaker.probe_wait_for(event.destination, delivery.finished_at) if event.status == Status.FAILED else None
        )
        return _Outcome(
            AttemptOutcome.TRANSIENT_FAILURE, event.status, event.retry_count, wait_until, result.error, None
        )
    decision = after_failure(
        event.retry_count, delivery.finished_at, policy, permanent=result.permanent, retry_after=result.retry_after
    )
    outcome = AttemptOutcome.PERMANENT_FAILURE if result.permanent else AttemptOutcome.TRANSIENT_FAILURE
    if decision.status != Status.DEAD:
        return _Outcome(outcome, decision.status, decision.retry_count, decision.next_retry_at, result.error, None)
    cause, cause_kind = causes.dead_cause(result.error, permanent=result.permanent)
    return _Outcome(
        outcome, decision.status, decision.retry_count, decision.next_retry_at, result.error, None, cause, cause_kind
    )


def record_results(deliveries: Sequence[Delivery], policy: RetryPolicy | None = None) -> list[str | None]:
    """Write a chunk of finished attempts. Returns each event's new status, or None where the lease was lost.

    A database error is retried with backoff for up to DATABASE_RETRY_FOR: a result that reached its receiver
    must not be forgotten over a short outage, or it would be sent again after the lease.
    """
    if not deliveries:
        return []
    policy = policy or RetryPolicy.from_settings()
    attempts = [(delivery, _outcome(delivery, policy)) for delivery in deliveries]
    give_up_at = time.monotonic() + DATABASE_RETRY_FOR.total_seconds()
    pause = 0.5
    while True:
        try:
            with transaction.atomic():
                numbers, applied = _apply(attempts)
                breaker.record(
                    [
                        breaker.Outcome(
                            destination=d.event.destination, event_id=d.event.id, success=d.result.ok,
                            transient_failure=not d.result.ok and not d.result.permanent,
                        )
                        for d in deliveries
                    ],
                    now=deliveries[-1].finished_at,
                )
                NotificationAttempt.objects.bulk_create(
                    NotificationAttempt(
                        event_id=delivery.event.id, number=numbers[delivery.event.id], started_at=delivery.started_at,
                        duration_ms=delivery.duration_ms, outcome=outcome.outcome, error=delivery.result.error,
                        http_status=delivery.result.http_status,
                        resulting_status=outcome.status if delivery.event.id in applied else None,
                    )
                    for delivery, outcome in attempts
                )
            break
        except (DatabaseError, IntegrityError) as exc:
            if connection.in_atomic_block or time.monotonic() + pause > give_up_at:
                log.error(
                    "could not record %d delivery results (%s: %s); "
                    "their events will be delivered again after their lease",
                    len(deliveries), type(exc).__name__, exc,
                )
                raise
            log.warning("recording %d delivery results failed (%s); retrying in %gs", len(deliveries), exc, pause)
            time.sleep(pause)
            # A connection the error broke is dropped here, so that the retry opens a new one.
            connection.close_if_unusable_or_obsolete()
            pause = min(pause * 2, 5.0)
    statuses: list[str | None] = []
    for delivery, outcome in attempts:
        status = outcome.status if delivery.event.id in applied else None
        statuses.append(status)
        _log_attempt(delivery, outcome, numbers[delivery.event.id], status)
    return statuses


def _apply(attempts: Sequence[tuple[Delivery, _Outcome]]) -> tuple[dict[str, int], set[str]]:
    """Apply the outcomes to events still holding our claim; count an attempt on every event.
    Returns ({event id: its new attempt number}, ids whose outcome was applied)."""
    applied_numbers = _apply_postgresql(attempts) if connection.vendor == "postgresql" else _apply_each(attempts)
    lost = [delivery.event.id for delivery, _ in attempts if delivery.event.id not in applied_numbers]
    numbers = dict(applied_numbers)
    if lost:
        # Another worker or an operator owns these events now; the attempt still counts, numbered after theirs.
        NotificationEvent.objects.filter(id__in=lost).update(attempt_count=F("attempt_count") + 1)
        numbers.update(NotificationEvent.objects.filter(id__in=lost).values_list("id", "attempt_count"))
    return numbers, set(applied_numbers)


_APPLY_SQL = """
UPDATE notification_events AS e SET
    status = v.status, retry_count = v.retry_count, next_retry_at = v.next_retry_at, last_error = v.last_error,
    sent_at = COALESCE(v.sent_at, e.sent_at), attempt_count = e.attempt_count + 1,
    {lease_released}, updated_at = v.updated_at, last_attempt_at = v.updated_at,
    cause = v.cause, cause_kind = v.cause_kind
FROM unnest(
    %s::varchar[], %s::varchar[], %s::varchar[], %s::int[], %s::timestamptz[], %s::text[], %s::timestamptz[],
    %s::timestamptz[], %s::varchar[], %s::varchar[]
) AS v(id, claim_token, status, retry_count, next_retry_at, last_error, sent_at, updated_at, cause, cause_kind)
WHERE e.id = v.id AND e.claim_token = v.claim_token
RETURNING e.id, e.attempt_count
"""


def _apply_postgresql(attempts: Sequence[tuple[Delivery, _Outcome]]) -> dict[str, int]:
    """One statement for the whole chunk, guarded by each event's claim token."""
    rows = [
        (
            delivery.event.id, delivery.event.claim_token, outcome.status, outcome.retry_count, outcome.next_retry_at,
            outcome.last_error, outcome.sent_at, delivery.finished_at, outcome.cause, outcome.cause_kind,
        )
        for delivery, outcome in attempts
    ]
    # unnest() takes one array per column.
    columns: list[list[Any]] = [[row[index] for row in rows] for index in range(10)]
    lease_released, released = set_clause(LEASE_RELEASED)
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL.format(lease_released=lease_released), [*released, *columns])
        return dict(cursor.fetchall())


def _apply_each(attempts: Sequence[tuple[Delivery, _Outcome]]) -> dict[str, int]:
    """The same, a statement per event, for SQLite (the embedded default, where statements cost no round trip)."""
    applied: dict[str, int] = {}
    for delivery, outcome in attempts:
        changes: dict[str, Any] = dict(
            status=outcome.status, retry_count=outcome.retry_count, next_retry_at=outcome.next_retry_at,
            last_error=outcome.last_error, attempt_count=F("attempt_count") + 1, updated_at=delivery.finished_at,
            last_attempt_at=delivery.finished_at, cause=outcome.cause, cause_kind=outcome.cause_kind, **LEASE_RELEASED,
        )
        if outcome.sent_at:
            changes["sent_at"] = outcome.sent_at
        event = NotificationEvent.objects.filter(id=delivery.event.id, claim_token=delivery.event.claim_token)
        if delivery.event.claim_token and event.update(**changes):
            applied[delivery.event.id] = (
                NotificationEvent.objects.filter(id=delivery.event.id).values_list("attempt_count", flat=True).get()
            )
    return applied


def _log_attempt(delivery: Delivery, outcome: _Outcome, number: int, status: str | None) -> None:
    event, result = delivery.event, delivery.result
    extra = {
        "event_id": event.id, "channel": event.channel, "destination": event.destination, "attempt": number,
        "outcome": outcome.outcome, "duration_ms": delivery.duration_ms, "status": status,
        "http_status": result.http_status,
    }
    attempt = (
        f"attempt {number} of event {event.id} via {event.destination}: {outcome.outcome} in {delivery.duration_ms}ms"
    )
    if status is None:
        log.warning("%s, not applied: the lease was lost (requeued or expired meanwhile)", attempt, extra=extra)
    elif result.ok:
        log.info("%s, now sent", attempt, extra=extra)
    else:
        log.warning("%s, now %s: %s", attempt, status, result.error, extra=extra)
