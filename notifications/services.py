"""Every state change of a notification event.

The REST API, web UI, admin, CLI, MCP server and tasks all call these functions;
nothing else writes `status`. Functions take `now` so that tests control the clock.

Delivery protocol (DESIGN §2 "Delivery guarantee"):
1. claim: in a short transaction, pick due rows with FOR UPDATE SKIP LOCKED and
   stamp them with a lease (`claimed_until`, `claim_token`);
2. send: call the channel outside any transaction;
3. record: UPDATE the event only if it still carries our `claim_token`, and keep
   the attempt row whatever happened.
A worker that dies between 1 and 3 leaves a lease that expires, and the event is
claimed again.
"""
import dataclasses
import logging
import queue
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from notifications import metrics
from notifications.backoff import RetryPolicy, after_failure
from notifications.models import (
    ActionKind,
    AttemptOutcome,
    Channel,
    EventType,
    NotificationAttempt,
    NotificationEvent,
    OperatorAction,
    Severity,
    Status,
)
from notifications.notifiers import DeliveryResult, build_notifier, not_configured_error
from notifications.notifiers.base import redact
from notifications.redaction import configured_secrets

log = logging.getLogger("notifications.services")

REQUEUEABLE = (Status.FAILED, Status.DEAD)
MAX_BULK_IDS = 10_000
EVENT_ID_MAX_LENGTH = NotificationEvent._meta.get_field("id").max_length
# How many of the ids a bulk requeue moved its log line names.
BULK_LOG_SAMPLE = 10
BULK_FILTER_FIELDS = ("status", "channel", "type", "certificate_id")


class ServiceError(Exception):
    """A refusal with a message fit to show to the user who asked."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class EventNotFound(ServiceError):
    def __init__(self, event_id):
        super().__init__(f"notification {event_id} not found")
        self.event_id = event_id


class RequeueRefused(ServiceError):
    def __init__(self, event_id, current_status, reason=None):
        super().__init__(
            reason
            or f"notification {event_id} is {current_status}; only failed or dead notifications can be requeued"
        )
        self.event_id = event_id
        self.current_status = current_status


class InvalidInput(ServiceError):
    """Bad input, with a message per field: {"channel": "…"}."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {text}" for name, text in errors.items()))


class EventIdTaken(InvalidInput):
    """The client-chosen id belongs to another notification (a conflict, not a malformed field)."""

    def __init__(self, event_id):
        super().__init__({"id": f"notification {event_id} already exists"})


@dataclass(frozen=True)
class Actor:
    """Who asks for a change, and through which interface (api, ui, admin, cli, mcp)."""

    name: str
    source: str


SYSTEM = Actor("system", "worker")


def _now(now):
    return now or timezone.now()


# --- creating -----------------------------------------------------------------


def validate_event_input(*, type, channel, recipient, message, certificate_id=None, severity=None, dedup_key=None, event_id=None):
    errors = {}
    if type not in EventType.values:
        errors["type"] = f"unknown type {type!r}; expected one of {', '.join(EventType.values)}"
    if channel not in Channel.values:
        errors["channel"] = f"unknown channel {channel!r}; expected one of {', '.join(Channel.values)}"
    if not recipient or not str(recipient).strip():
        errors["recipient"] = "must not be empty"
    elif len(recipient) > 1024:
        errors["recipient"] = "must be at most 1024 characters"
    elif any(ch in recipient for ch in "\r\n"):
        errors["recipient"] = "must not contain line breaks"
    limit = settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES
    if message is None or not str(message).strip():
        errors["message"] = "must not be empty"
    elif len(str(message).encode()) > limit:
        errors["message"] = f"is {len(str(message).encode())} bytes; the limit is {limit} (CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES)"
    if severity not in (None, "") and severity not in Severity.values:
        errors["severity"] = f"unknown severity {severity!r}; expected one of {', '.join(Severity.values)}"
    if certificate_id is not None and len(certificate_id) > 255:
        errors["certificate_id"] = "must be at most 255 characters"
    if dedup_key is not None and not (1 <= len(dedup_key) <= 255):
        errors["dedup_key"] = "must be 1 to 255 characters"
    if event_id is not None and not (1 <= len(event_id) <= 64):
        errors["id"] = "must be 1 to 64 characters"
    if errors:
        raise InvalidInput(errors)


def create_event(*, type, channel, recipient, message, certificate_id=None, severity=None, dedup_key=None, event_id=None):
    """Create a pending event and hand it to the workers once committed.

    Returns (event, created). With a `dedup_key` already known, returns the existing event and created=False.
    """
    certificate_id = certificate_id or None
    severity = severity or None
    dedup_key = dedup_key or None
    validate_event_input(
        type=type, channel=channel, recipient=recipient, message=message, certificate_id=certificate_id,
        severity=severity, dedup_key=dedup_key, event_id=event_id,
    )
    if dedup_key:
        existing = NotificationEvent.objects.filter(dedup_key=dedup_key).first()
        if existing:
            return existing, False
    fields = dict(
        type=type, channel=channel, recipient=recipient.strip(), message=message,
        certificate_id=certificate_id, severity=severity, dedup_key=dedup_key,
    )
    if event_id:
        fields["id"] = event_id
    try:
        with transaction.atomic():
            event = NotificationEvent.objects.create(**fields)
    except IntegrityError:
        # Lost a race with a create of the same dedup key, or the client reused an id.
        if dedup_key:
            existing = NotificationEvent.objects.filter(dedup_key=dedup_key).first()
            if existing:
                return existing, False
        if event_id and NotificationEvent.objects.filter(id=event_id).exists():
            raise EventIdTaken(event_id) from None
        raise
    log.info(
        "created event %s: %s via %s", event.id, event.type, event.channel,
        extra={"event_id": event.id, "channel": event.channel, "status": event.status},
    )
    _dispatch_on_commit("deliver_event", event.id)
    return event, True


def _dispatch_on_commit(task, *args):
    from notifications import tasks

    transaction.on_commit(lambda: tasks.enqueue(task, *args))


# --- claiming -----------------------------------------------------------------


def _unleased(now):
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def _due(kind, now):
    if kind == "pending":
        return Q(status=Status.PENDING) & _unleased(now)
    if kind == "retry":
        return Q(status=Status.FAILED, next_retry_at__lte=now) & _unleased(now)
    raise ValueError(kind)


_ORDER = {"pending": ("created_at", "id"), "retry": ("next_retry_at", "id")}


def claim_due_events(kind, now=None, limit=None, lease=None):
    """Lease up to `limit` due events ("pending" or "retry") to this worker and return them.

    Rows another worker is claiming right now are skipped (SKIP LOCKED), never waited for;
    the UPDATE re-checks the lease so that SQLite, which has no row locks, is safe too.
    """
    now = _now(now)
    limit = limit or settings.CERTCTL_NOTIFICATION_BATCH_SIZE
    lease = lease or settings.CERTCTL_NOTIFICATION_LEASE
    token = secrets.token_hex(16)
    with transaction.atomic():
        candidates = NotificationEvent.objects.filter(_due(kind, now)).order_by(*_ORDER[kind])
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        NotificationEvent.objects.filter(_due(kind, now), id__in=ids).update(
            claimed_until=now + lease, claim_token=token
        )
    claimed = list(NotificationEvent.objects.filter(claim_token=token).order_by(*_ORDER[kind]))
    for event in claimed:
        log.debug(
            "claimed event %s for the %s pass until %s", event.id, kind, event.claimed_until.isoformat(),
            extra={"event_id": event.id, "channel": event.channel, "pass": kind},
        )
    return claimed


def claim_event(event_id, now=None, lease=None):
    """Lease one event if it is due (pending, or failed with its retry time reached); else None."""
    now = _now(now)
    lease = lease or settings.CERTCTL_NOTIFICATION_LEASE
    token = secrets.token_hex(16)
    due = _due("pending", now) | _due("retry", now)
    if not NotificationEvent.objects.filter(due, id=event_id).update(claimed_until=now + lease, claim_token=token):
        return None
    return NotificationEvent.objects.filter(id=event_id, claim_token=token).first()


# --- delivering ---------------------------------------------------------------


def send_to_channel(event):
    """One delivery attempt over the event's channel; never raises."""
    notifier = build_notifier(event.channel)
    if notifier is None:
        return DeliveryResult.permanent_failure(not_configured_error(event.channel))
    try:
        result = notifier.send(event)
    except Exception as exc:  # a notifier bug must cost one attempt, not the whole batch
        log.exception("notifier raised", extra={"event_id": event.id, "channel": event.channel})
        result = DeliveryResult.transient(f"internal error in the {event.channel} notifier: {type(exc).__name__}: {exc}")
    # Errors are logged and shown in the UI and the API; a receiver or an exception may quote any configured secret.
    return dataclasses.replace(result, error=redact(result.error, configured_secrets())) if result.error else result


def deliver_claimed(event, now=None, policy=None):
    """Send a claimed event and record the outcome. Returns the event's new status, or None if the lease was lost."""
    started_at = _now(now)
    started = time.monotonic()
    result = send_to_channel(event)
    duration_ms = int((time.monotonic() - started) * 1000)
    finished_at = now or timezone.now()
    return record_delivery(event, result, started_at=started_at, duration_ms=duration_ms, now=finished_at, policy=policy)


def record_delivery(event, result, *, started_at, duration_ms, now, policy=None):
    policy = policy or RetryPolicy.from_settings()
    if result.ok:
        outcome = AttemptOutcome.SUCCESS
        changes = dict(status=Status.SENT, sent_at=now, next_retry_at=None, last_error=None)
    else:
        outcome = AttemptOutcome.PERMANENT_FAILURE if result.permanent else AttemptOutcome.TRANSIENT_FAILURE
        decision = after_failure(event.retry_count, now, policy, permanent=result.permanent, retry_after=result.retry_after)
        changes = dict(
            status=decision.status, retry_count=decision.retry_count,
            next_retry_at=decision.next_retry_at, last_error=result.error,
        )
    changes.update(claimed_until=None, claim_token=None, updated_at=now)
    with transaction.atomic():
        # The row lock orders writers of this event (a late worker whose lease was taken over writes its
        # attempt too), so the attempt numbers they count cannot collide.
        list(NotificationEvent.objects.select_for_update().filter(id=event.id).values_list("id", flat=True))
        updated = NotificationEvent.objects.filter(id=event.id, claim_token=event.claim_token).update(**changes)
        number = (NotificationAttempt.objects.filter(event_id=event.id).aggregate(n=Max("number"))["n"] or 0) + 1
        NotificationAttempt.objects.create(
            event_id=event.id, number=number, started_at=started_at, duration_ms=duration_ms,
            outcome=outcome, error=result.error, http_status=result.http_status,
            resulting_status=changes["status"] if updated else None,
        )
    new_status = changes["status"] if updated else None
    log_extra = {
        "event_id": event.id, "channel": event.channel, "attempt": number, "outcome": outcome,
        "duration_ms": duration_ms, "status": new_status, "http_status": result.http_status,
    }
    attempt = f"attempt {number} of event {event.id} via {event.channel}: {outcome} in {duration_ms}ms"
    if not updated:
        log.warning("%s, not applied: the lease was lost (requeued or expired meanwhile)", attempt, extra=log_extra)
    elif result.ok:
        log.info("%s, now sent", attempt, extra=log_extra)
    else:
        log.warning("%s, now %s: %s", attempt, new_status, result.error, extra=log_extra)
    return new_status


# The result of an event a pass claimed but did not start in time (deliver_batch).
RELEASED = "released"


@dataclass
class PassReport:
    """What one pending pass or retry sweep did."""

    kind: str
    claimed: int = 0
    outcomes: dict = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self):
        return {"kind": self.kind, "claimed": self.claimed, "outcomes": self.outcomes, "duration_s": round(self.duration_s, 3)}


def _drain(work, results, now, policy, deadline):
    """One delivery thread: take events until none is left or it is too late to start one, then give back
    its database connection. Its first event is always tried, so that a pass never starves."""
    try:
        first = True
        while first or time.monotonic() < deadline:
            first = False
            try:
                index, event = work.get_nowait()
            except queue.Empty:
                return
            results[index] = deliver_claimed(event, now=now, policy=policy)
    finally:
        connection.close()


def _in_memory_sqlite():
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


def start_window():
    """Seconds after a pass begins in which it may still start a delivery. django-q2 kills the task at its
    timeout (90 % of the lease); a delivery started later than this could be cut mid-request there."""
    slowest = settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
    return settings.Q_CLUSTER["timeout"] - slowest.total_seconds()


def release_claims(events):
    """Give back claims this worker will not use, so the next pass takes them now rather than at lease expiry."""
    ids_by_token = {}
    for event in events:
        ids_by_token.setdefault(event.claim_token, []).append(event.id)
    return sum(
        NotificationEvent.objects.filter(claim_token=token, id__in=ids).update(claimed_until=None, claim_token=None)
        for token, ids in ids_by_token.items()
    )


def deliver_batch(events, now=None, policy=None, deadline=None):
    """Deliver claimed events with a bounded set of threads sharing one queue, so a slow receiver holds one
    thread, not the batch. Events not started by `deadline` (time.monotonic(); default: the start window)
    are released for the next pass; their result is RELEASED."""
    policy = policy or RetryPolicy.from_settings()
    deadline = time.monotonic() + start_window() if deadline is None else deadline
    results = [RELEASED] * len(events)
    workers = min(settings.CERTCTL_NOTIFICATION_CONCURRENCY, len(events))
    # Other connections cannot help inside the caller's transaction (they would not see its uncommitted
    # claims and would wait on its locks) nor on an in-memory SQLite database, whose shared-cache table
    # locks fail at once ("database table is locked") instead of waiting. A SQLite file keeps the threads.
    if workers <= 1 or connection.in_atomic_block or _in_memory_sqlite():
        for index, event in enumerate(events):
            if index and time.monotonic() >= deadline:
                break
            results[index] = deliver_claimed(event, now=now, policy=policy)
    else:
        work = queue.SimpleQueue()
        for item in enumerate(events):
            work.put(item)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deliver") as pool:
            for future in [pool.submit(_drain, work, results, now, policy, deadline) for _ in range(workers)]:
                future.result()
    untried = [event for event, result in zip(events, results, strict=True) if result == RELEASED]
    if untried:
        log.warning(
            "%d claimed events not started in time (slow receivers): released for the next pass", release_claims(untried)
        )
    return results


def _run_pass(kind, now=None, limit=None):
    started = time.monotonic()
    events = claim_due_events(kind, now=now, limit=limit)
    statuses = deliver_batch(events, now=now) if events else []
    report = PassReport(kind=kind, claimed=len(events), duration_s=time.monotonic() - started)
    for status in statuses:
        key = str(status) if status else "lease_lost"
        report.outcomes[key] = report.outcomes.get(key, 0) + 1
    metrics.pass_finished(report, finished_at=now or timezone.now())
    if events:
        log.info("%s pass: %d claimed, %s", kind, len(events), report.outcomes, extra={"pass": kind})
    return report


def process_pending(now=None, limit=None):
    """Deliver up to one batch of pending events."""
    return _run_pass("pending", now=now, limit=limit)


def retry_sweep(now=None, limit=None):
    """Retry up to one batch of failed events whose next_retry_at has come."""
    return _run_pass("retry", now=now, limit=limit)


def deliver_event(event_id, now=None):
    """Deliver one event now if it is due and nobody holds it (used right after create/requeue)."""
    event = claim_event(event_id, now=now)
    if event is None:
        return None
    return deliver_claimed(event, now=now)


# --- operator actions ---------------------------------------------------------


def _impossible_id(event_id: str) -> bool:
    """True for ids no event can have; PostgreSQL refuses a NUL even in a lookup (DataError, a 500)."""
    return "\x00" in event_id or len(event_id) > EVENT_ID_MAX_LENGTH


def get_event(event_id):
    if _impossible_id(event_id):
        raise EventNotFound(event_id)
    try:
        return NotificationEvent.objects.get(id=event_id)
    except NotificationEvent.DoesNotExist:
        raise EventNotFound(event_id) from None


_REQUEUE_CHANGES = dict(status=Status.PENDING, retry_count=0, next_retry_at=None, last_error=None, claimed_until=None, claim_token=None)


def requeue_event(event_id, actor, now=None):
    """Move a failed or dead event back to pending with fresh counters; its history stays."""
    if _impossible_id(event_id):
        raise EventNotFound(event_id)
    now = _now(now)
    with transaction.atomic():
        current = NotificationEvent.objects.filter(id=event_id).values_list("status", "claimed_until").first()
        if current is None:
            raise EventNotFound(event_id)
        updated = (
            NotificationEvent.objects.filter(_unleased(now), id=event_id, status__in=REQUEUEABLE)
            .update(updated_at=now, **_REQUEUE_CHANGES)
        )
        if not updated:
            status, claimed_until = current
            if status in REQUEUEABLE:
                raise RequeueRefused(
                    event_id, status,
                    f"notification {event_id} is being delivered right now; try again after {claimed_until:%H:%M:%S} UTC",
                )
            raise RequeueRefused(event_id, status)
        OperatorAction.objects.create(
            event_id=event_id, action=ActionKind.REQUEUE, actor=actor.name, source=actor.source, previous_status=current[0]
        )
    log.info(
        "requeued event %s (was %s) by %s via %s", event_id, current[0], actor.name, actor.source,
        extra={"event_id": event_id, "status": Status.PENDING, "previous_status": current[0]},
    )
    _dispatch_on_commit("deliver_event", event_id)
    return NotificationEvent.objects.get(id=event_id)


@dataclass(frozen=True)
class BulkRequeueResult:
    requeued: int
    skipped: int


def requeue_events(actor, ids=None, filters=None, now=None):
    """Requeue many events by id list or by filter; anything not failed/dead (or unknown) is skipped."""
    now = _now(now)
    if ids is not None:
        ids = list(dict.fromkeys(str(i) for i in ids))
        if len(ids) > MAX_BULK_IDS:
            raise InvalidInput({"ids": f"{len(ids)} ids given; at most {MAX_BULK_IDS} per call"})
        # Impossible ids are unknown ids: skipped, like any other.
        selection = NotificationEvent.objects.filter(id__in=[i for i in ids if not _impossible_id(i)])
        considered = len(ids)
    else:
        filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
        unknown = set(filters) - set(BULK_FILTER_FIELDS)
        if unknown:
            raise InvalidInput({name: "not a bulk requeue filter" for name in sorted(unknown)})
        if not filters:
            raise InvalidInput({"ids": "give a list of ids or at least one filter (status, channel, type, certificate_id)"})
        selection = NotificationEvent.objects.filter(**filters)
        considered = None
    requeued = 0
    with transaction.atomic():
        eligible = selection.filter(_unleased(now), status__in=REQUEUEABLE)
        if connection.features.has_select_for_update_skip_locked:
            eligible = eligible.select_for_update(skip_locked=True)
        rows = list(eligible.values_list("id", "status"))
        if considered is None:
            considered = selection.count()
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            chunk_ids = [event_id for event_id, _ in chunk]
            count = (
                NotificationEvent.objects.filter(_unleased(now), id__in=chunk_ids, status__in=REQUEUEABLE)
                .update(updated_at=now, **_REQUEUE_CHANGES)
            )
            requeued += count
            OperatorAction.objects.bulk_create(
                OperatorAction(
                    event_id=event_id, action=ActionKind.REQUEUE, actor=actor.name, source=actor.source,
                    bulk=True, previous_status=status,
                )
                for event_id, status in chunk
            )
    # One line however many events moved (a line per event would be 10 000 lines per call); the
    # operator_actions rows keep each event's record.
    sample = [event_id for event_id, _ in rows[:BULK_LOG_SAMPLE]]
    more = f" and {len(rows) - len(sample)} more" if len(rows) > len(sample) else ""
    log.info(
        "bulk requeue by %s via %s: %d requeued, %d skipped%s", actor.name, actor.source, requeued,
        max(considered - requeued, 0), f"; requeued {', '.join(sample)}{more}" if sample else "",
        extra={"requeued": requeued, "skipped": max(considered - requeued, 0), "event_ids": sample},
    )
    if requeued:
        _dispatch_on_commit("process_pending")
    return BulkRequeueResult(requeued=requeued, skipped=max(considered - requeued, 0))


def mark_read(event_id, actor, now=None):
    """Record the operator's acknowledgement; delivery state is untouched. Marking twice keeps the first time."""
    if _impossible_id(event_id):
        raise EventNotFound(event_id)
    now = _now(now)
    with transaction.atomic():
        updated = NotificationEvent.objects.filter(id=event_id, read_at__isnull=True).update(read_at=now, updated_at=now)
        if updated:
            OperatorAction.objects.create(event_id=event_id, action=ActionKind.MARK_READ, actor=actor.name, source=actor.source)
        elif not NotificationEvent.objects.filter(id=event_id).exists():
            raise EventNotFound(event_id)
    if updated:
        log.info("marked event %s read by %s via %s", event_id, actor.name, actor.source, extra={"event_id": event_id})
    return NotificationEvent.objects.get(id=event_id)


# --- reading ------------------------------------------------------------------


def stats_summary(now=None):
    """Counts per status and the oldest retry that is due but not yet taken."""
    now = _now(now)
    counts = dict.fromkeys(Status.values, 0)
    for row in NotificationEvent.objects.values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    oldest_due = NotificationEvent.objects.filter(status=Status.FAILED, next_retry_at__lte=now).aggregate(
        t=Min("next_retry_at")
    )["t"]
    return {
        "notifications_total": sum(counts.values()),
        "notifications_pending": counts[Status.PENDING],
        "notifications_sent": counts[Status.SENT],
        "notifications_failed": counts[Status.FAILED],
        "notifications_dead": counts[Status.DEAD],
        "notifications_unread": NotificationEvent.objects.filter(read_at__isnull=True).count(),
        "oldest_due_retry_at": oldest_due,
        "oldest_due_retry_age_seconds": int((now - oldest_due).total_seconds()) if oldest_due else None,
        "completed_at": now,
    }


def retry_display(event):
    """"Retry n/max" as operators read it: a dead event after five failures shows 5/5."""
    return f"Retry {event.retry_count}/{settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS}"
