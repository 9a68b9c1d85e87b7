"""Operator-facing state changes of notification events: create, requeue, mark read; and the reads they need.

The REST API, web UI, admin, CLI and MCP server call these functions; the delivery engine
(notifications.delivery) makes the other state changes. Nothing else writes `status`.
Functions take `now` so that tests control the clock.
"""
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Min
from django.utils import timezone

from notifications import dispatch
from notifications.delivery import unleased
from notifications.models import (
    ActionKind,
    Channel,
    EventType,
    NotificationEvent,
    OperatorAction,
    Severity,
    Status,
)

log = logging.getLogger("notifications.services")

REQUEUEABLE = (Status.FAILED, Status.DEAD)
MAX_BULK_IDS = 10_000
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
    dispatch.deliver_soon()
    return event, True


# --- operator actions ---------------------------------------------------------


def get_event(event_id):
    try:
        return NotificationEvent.objects.get(id=event_id)
    except NotificationEvent.DoesNotExist:
        raise EventNotFound(event_id) from None


_REQUEUE_CHANGES = dict(status=Status.PENDING, retry_count=0, next_retry_at=None, last_error=None, claimed_until=None, claim_token=None)


def requeue_event(event_id, actor, now=None):
    """Move a failed or dead event back to pending with fresh counters; its history stays."""
    now = _now(now)
    with transaction.atomic():
        current = NotificationEvent.objects.filter(id=event_id).values_list("status", "claimed_until").first()
        if current is None:
            raise EventNotFound(event_id)
        updated = (
            NotificationEvent.objects.filter(unleased(now), id=event_id, status__in=REQUEUEABLE)
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
    dispatch.deliver_soon()
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
        selection = NotificationEvent.objects.filter(id__in=ids)
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
        eligible = selection.filter(unleased(now), status__in=REQUEUEABLE)
        if connection.features.has_select_for_update_skip_locked:
            eligible = eligible.select_for_update(skip_locked=True)
        rows = list(eligible.values_list("id", "status"))
        if considered is None:
            considered = selection.count()
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            chunk_ids = [event_id for event_id, _ in chunk]
            count = (
                NotificationEvent.objects.filter(unleased(now), id__in=chunk_ids, status__in=REQUEUEABLE)
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
    for event_id, status in rows:
        log.info(
            "requeued event %s (was %s) by %s via %s, in bulk", event_id, status, actor.name, actor.source,
            extra={"event_id": event_id, "status": Status.PENDING, "previous_status": status},
        )
    log.info("bulk requeue by %s via %s: %d requeued, %d skipped", actor.name, actor.source, requeued, considered - requeued)
    if requeued:
        dispatch.deliver_soon()
    return BulkRequeueResult(requeued=requeued, skipped=max(considered - requeued, 0))


def mark_read(event_id, actor, now=None):
    """Record the operator's acknowledgement; delivery state is untouched. Marking twice keeps the first time."""
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
