"""Every operator-facing change of events, one function each, with its audit row (OperatorAction): create, requeue,
mark read (dismiss), one by one, in bulk by ids or filters, and by dead-letter group.

The REST API, web UI, admin, CLI and MCP server call these; the delivery engine (notifications.engine) makes the
other state changes. Nothing else writes `status`. Functions take `now` so that tests control the clock.
"""
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, connection, transaction
from django.db.models import Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from notifications.actors import Actor
from notifications.engine import dispatch
from notifications.errors import EventIdTaken, EventNotFound, InvalidInput, RequeueRefused, Unprocessable
from notifications.models import (
    LEASE_RELEASED,
    REQUEUE_RESET,
    ActionKind,
    Channel,
    ColumnValue,
    ConfigVersion,
    Destination,
    EventQuerySet,
    EventType,
    NotificationEvent,
    OperatorAction,
    Severity,
    Status,
    event_id_problem,
    labels_problem,
    set_clause,
)
from notifications.queries.events import REQUEUEABLE, impossible_id, matching_count, requeueable, selection, unread
from notifications.queries.groups import failure_group

# Operator actions keep the logger name they were always logged under.
log = logging.getLogger("notifications.services")


def _requeue_changes(now: datetime) -> dict[str, ColumnValue]:
    """A requeue's reset (REQUEUE_RESET) with the lease released (LEASE_RELEASED), stamped `now`: both of requeue's
    statements, the ORM's and PostgreSQL's, are made from it."""
    return {**REQUEUE_RESET, **LEASE_RELEASED, "updated_at": now}


# --- create --------------------------------------------------------------------


def validate_event_input(
    *, type: str | None, channel: str | None, recipient: str | None, message: str | None,
    certificate_id: str | None = None, severity: str | None = None, dedup_key: str | None = None,
    event_id: str | None = None, labels: object = None, destination: str | None = None,
) -> None:
    """Raise InvalidInput naming every field of a new or edited event that breaks a rule."""
    errors: dict[str, str] = {}
    if labels is not None and (problem := labels_problem(labels)):
        errors["labels"] = problem
    if type not in EventType.values:
        errors["type"] = f"unknown type {type!r}; expected one of {', '.join(EventType.values)}"
    if channel not in Channel.values and not (destination and channel is None):
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
        errors["message"] = (
            f"is {len(str(message).encode())} bytes; the limit is {limit} (CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES)"
        )
    if severity not in (None, "") and severity not in Severity.values:
        errors["severity"] = f"unknown severity {severity!r}; expected one of {', '.join(Severity.values)}"
    if certificate_id is not None and len(certificate_id) > 255:
        errors["certificate_id"] = "must be at most 255 characters"
    if dedup_key is not None and not (1 <= len(dedup_key) <= 255):
        errors["dedup_key"] = "must be 1 to 255 characters"
    if event_id is not None and (problem := event_id_problem(event_id)):
        errors["id"] = problem
    if errors:
        raise InvalidInput(errors)


@dataclass(frozen=True)
class EventDestination:
    """Where a new event goes: its channel, its target (None for a channel's environment destination, which the
    event names by its channel only, as certctl's do) and the destination's default recipients (an Email
    destination's `recipients`; "" when it has none)."""

    name: str
    channel: str
    target: str | None
    recipients: str = ""


def _default_recipients(channel: str, from_environment: bool, config: Mapping[str, Any]) -> str:
    if channel != Channel.EMAIL:
        return ""
    if from_environment:
        return str(settings.CERTCTL_SMTP_RECIPIENTS or "")
    return str(config.get("recipients") or "")


@dataclass(frozen=True)
class LockedDestinations:
    """What lock_destinations found: the usable destinations by name, why each other one is not, and the
    configuration version (ConfigVersion) read in the same statement (None when no destination was found)."""

    usable: dict[str, EventDestination]
    problems: dict[str, str]
    version: int | None

    def get(self, name: str) -> EventDestination:
        """The destination `name`; Unprocessable saying why it cannot take an event."""
        if name in self.problems:
            raise Unprocessable({"destination": self.problems[name]})
        return self.usable[name]


def lock_destinations(names: Iterable[str]) -> LockedDestinations:
    """The live destinations among `names`, share-locked (PostgreSQL: FOR SHARE) until the caller's transaction
    ends, so that no destination is disabled or removed between this check and the events it lets in: update and
    delete lock the row FOR UPDATE, and so wait for the events' commit, or make this read wait for theirs and then
    see the change. The configuration version comes with them, so that a caller routing with cached routes can
    check they are current without a statement of its own. Call it inside a transaction."""
    wanted = list(dict.fromkeys(names))
    version = ConfigVersion.objects.filter(id=1).values("version")
    rows = (
        Destination.objects.live().filter(name__in=wanted)
        .annotate(config_version=Subquery(version))
        .values_list("name", "channel", "from_environment", "enabled", "config", "config_version")
    )
    sql, params = rows.query.sql_with_params()
    if connection.vendor == "postgresql":
        sql += " FOR SHARE"  # SQLite's transactions hold its write lock from the start (transaction_mode IMMEDIATE)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = {row[0]: row[1:] for row in cursor.fetchall()}
    usable: dict[str, EventDestination] = {}
    problems: dict[str, str] = {}
    config_version: int | None = None
    for name in wanted:
        if name not in found:
            if name in Channel.values:
                # A flushed test database has lost the environment rows; they are implied.
                usable[name] = EventDestination(name, name, None, _default_recipients(name, True, {}))
            else:
                problems[name] = f"unknown destination {name!r}; list them at /api/v1/destinations"
            continue
        channel, from_environment, enabled, config, config_version = found[name]
        if not enabled:
            problems[name] = f"destination {name!r} is disabled; enable it or choose another"
            continue
        if isinstance(config, str):
            config = json.loads(config)
        usable[name] = EventDestination(
            name, channel, None if from_environment else name,
            _default_recipients(channel, from_environment, config or {}),
        )
    return LockedDestinations(usable, problems, (config_version or 0) if found else None)


def event_destination(channel: str | None, destination: str | None) -> EventDestination:
    """Where a new event given its `channel`, its `destination` name, or both goes; a named destination is locked
    as lock_destinations does (call it inside a transaction). Raises InvalidInput for an unknown channel,
    Unprocessable when the destination is unknown, removed or disabled, or is of another channel."""
    if not destination:
        if channel not in Channel.values:
            raise InvalidInput({"channel": f"unknown channel {channel!r}; expected one of {', '.join(Channel.values)}"})
        return EventDestination(channel, channel, None)
    found = lock_destinations([destination]).get(destination)
    if channel and channel != found.channel:
        raise Unprocessable({
            "channel": f"destination {destination!r} is a {found.channel} destination, not {channel}; "
            "give one of them, or both agreeing"
        })
    return found


def create_event(
    *, type: str, channel: str | None = None, recipient: str, message: str, certificate_id: str | None = None,
    severity: str | None = None, dedup_key: str | None = None, event_id: str | None = None,
    destination: str | None = None, labels: dict[str, str] | None = None,
) -> tuple[NotificationEvent, bool]:
    """Create a pending event for `destination` (a name), or for `channel`'s environment destination when only the
    channel is given, and hand it to the workers once committed. The destination is checked and share-locked in
    the transaction of the insert: one disabled or removed meanwhile refuses the event, never hides it.

    Returns (event, created). With a `dedup_key` already known for that destination, returns the existing event
    and created=False.
    """
    certificate_id = certificate_id or None
    severity = severity or None
    dedup_key = dedup_key or None
    labels = labels or {}
    validate_event_input(
        type=type, channel=channel, recipient=recipient, message=message, certificate_id=certificate_id,
        severity=severity, dedup_key=dedup_key, event_id=event_id, labels=labels, destination=destination,
    )
    destination_name = destination or str(channel)  # the found destination's, once read
    try:
        with transaction.atomic():
            found = event_destination(channel, destination)
            destination_name = found.name if found.target else found.channel
            if dedup_key:
                existing = NotificationEvent.objects.filter(destination=destination_name, dedup_key=dedup_key).first()
                if existing:
                    return existing, False
            fields = dict(
                type=type, channel=found.channel, recipient=recipient.strip(), message=message,
                certificate_id=certificate_id, severity=severity, dedup_key=dedup_key, target_id=found.target,
                labels=labels,
            )
            if event_id:
                fields["id"] = event_id
            event = NotificationEvent.objects.create(**fields)
    except IntegrityError:
        # Lost a race with a create of the same dedup key, or the client reused an id.
        if dedup_key:
            existing = NotificationEvent.objects.filter(destination=destination_name, dedup_key=dedup_key).first()
            if existing:
                return existing, False
        if event_id and NotificationEvent.objects.filter(id=event_id).exists():
            raise EventIdTaken(event_id) from None
        raise
    log_created(event, destination_name)
    dispatch.deliver_soon()
    return event, True


def log_created(event: NotificationEvent, destination: str) -> None:
    log.info(
        "created event %s: %s via %s", event.id, event.type, destination,
        extra={"event_id": event.id, "channel": event.channel, "destination": destination, "status": event.status},
    )


# --- requeue -----------------------------------------------------------------


def requeue_event(event_id: str, actor: Actor, now: datetime | None = None) -> NotificationEvent:
    """Move a failed or dead event back to pending with fresh counters; its history stays."""
    if impossible_id(event_id):
        raise EventNotFound(event_id)
    now = now or timezone.now()
    with transaction.atomic():
        current = NotificationEvent.objects.filter(id=event_id).values_list("status", "claimed_until").first()
        if current is None:
            raise EventNotFound(event_id)
        updated = requeueable(NotificationEvent.objects.filter(id=event_id), now).update(**_requeue_changes(now))
        if not updated:
            status, claimed_until = current
            if status in REQUEUEABLE:
                raise RequeueRefused(
                    event_id, status,
                    f"notification {event_id} is being delivered right now; "
                    f"try again after {claimed_until:%H:%M:%S} UTC",
                )
            raise RequeueRefused(event_id, status)
        OperatorAction.objects.create(
            event_id=event_id, action=ActionKind.REQUEUE, actor=actor.name, source=actor.source,
            previous_status=current[0],
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


# How many requeued ids the summary log line of a bulk requeue names.
LOG_SAMPLE = 10


def requeue_events(
    actor: Actor, ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkRequeueResult:
    """Requeue many events by id list or by filter; anything not failed/dead (or unknown), or leased to a worker
    right now, is skipped.

    Set-based: on PostgreSQL one statement locks the eligible rows, moves them (UPDATE … RETURNING) and writes
    one operator action per event (INSERT … SELECT), so 100,000 events cost one statement and one summary log
    line with a sample of ids.
    """
    chosen, considered = selection(ids, filters)
    if considered is None:
        considered = matching_count(filters or {}, chosen)
    return _requeue_selection(actor, chosen, considered, now or timezone.now())


def _requeue_selection(
    actor: Actor, chosen: EventQuerySet, considered: int, now: datetime
) -> BulkRequeueResult:
    eligible = requeueable(chosen, now).order_by()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            requeued, sample = _requeue_postgresql(eligible, actor, now)
        else:
            requeued, sample = _requeue_each_chunk(eligible, actor, now)
    log.info(
        "bulk requeue by %s via %s: %d requeued (was failed or dead), %d skipped; e.g. %s",
        actor.name, actor.source, requeued, max(considered - requeued, 0), ", ".join(sample) or "none",
        extra={"requeued": requeued, "sample_event_ids": sample, "status": Status.PENDING},
    )
    if requeued:
        dispatch.deliver_soon()
    return BulkRequeueResult(requeued=requeued, skipped=max(considered - requeued, 0))


# `picked` locks the eligible rows (skipping any a worker is claiming right now); locked, each is certainly
# updated, so the audit rows come straight from it. The UPDATE finds the rows by their physical address (a
# TID scan): no index probe per row, no scan of the table.
_REQUEUE_SQL = """
WITH picked AS ({eligible}),
changed AS (
    UPDATE {events} SET {reset}
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked))
    RETURNING id
),
logged AS (
    INSERT INTO {actions} (event_id, action, actor, source, bulk, previous_status, created_at)
    SELECT id, %s, %s, %s, true, status, %s FROM picked
)
SELECT (SELECT count(*) FROM changed), ARRAY(SELECT id FROM changed LIMIT %s)
"""


def _requeue_postgresql(eligible: EventQuerySet, actor: Actor, now: datetime) -> tuple[int, list[str]]:
    """One statement: lock the eligible rows, move them, write an operator action for each."""
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    try:
        eligible_sql, eligible_params = (
            eligible.select_for_update(skip_locked=True)
            .annotate(ctid=RawSQL(f"{table}.ctid", ()))
            .values("ctid", "id", "status")
            .query.sql_with_params()
        )
    except EmptyResultSet:  # an empty id list
        return 0, []
    reset, reset_values = set_clause(_requeue_changes(now))
    sql = _REQUEUE_SQL.format(
        eligible=eligible_sql,
        events=table,
        reset=reset,
        actions=connection.ops.quote_name(OperatorAction._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            # created_at as auto_now_add sets it for a single requeue: the real time of the action.
            [*eligible_params, *reset_values, ActionKind.REQUEUE, actor.name, actor.source, timezone.now(), LOG_SAMPLE],
        )
        requeued, sample = cursor.fetchone()
    return requeued, list(sample)


def _requeue_each_chunk(eligible: EventQuerySet, actor: Actor, now: datetime) -> tuple[int, list[str]]:
    """The same for SQLite (no data-modifying WITH), a thousand events per UPDATE.

    The caller's transaction holds SQLite's write lock from its start (transaction_mode IMMEDIATE in settings), so
    no worker or operator can change the listed rows before they are updated: each is certainly requeued.
    """
    rows = list(eligible.values_list("id", "status"))
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        NotificationEvent.objects.filter(id__in=[event_id for event_id, _ in chunk]).update(**_requeue_changes(now))
        OperatorAction.objects.bulk_create(
            OperatorAction(
                event_id=event_id, action=ActionKind.REQUEUE, actor=actor.name, source=actor.source,
                bulk=True, previous_status=status,
            )
            for event_id, status in chunk
        )
    return len(rows), [event_id for event_id, _ in rows[:LOG_SAMPLE]]


# --- mark read -----------------------------------------------------------------


def mark_read(event_id: str, actor: Actor, now: datetime | None = None) -> NotificationEvent:
    """Record the operator's acknowledgement (for a dead event: dismiss it from the dead-letter queue).

    Delivery state is untouched: unlike certctl, acknowledging never cancels a pending e-mail or page.
    Marking twice keeps the first time.
    """
    if impossible_id(event_id):
        raise EventNotFound(event_id)
    now = now or timezone.now()
    with transaction.atomic():
        current = NotificationEvent.objects.filter(id=event_id).values_list("status", flat=True).first()
        if current is None:
            raise EventNotFound(event_id)
        updated = unread(NotificationEvent.objects.filter(id=event_id)).update(read_at=now, updated_at=now)
        if updated:
            OperatorAction.objects.create(
                event_id=event_id, action=ActionKind.MARK_READ, actor=actor.name, source=actor.source,
                previous_status=current,
            )
    if updated:
        log.info("marked event %s read by %s via %s", event_id, actor.name, actor.source, extra={"event_id": event_id})
    return NotificationEvent.objects.get(id=event_id)


@dataclass(frozen=True)
class BulkReadResult:
    marked_read: int
    skipped: int
    dismissed: int = 0  # of marked_read, the dead ones


def mark_read_events(
    actor: Actor, ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkReadResult:
    """Mark many events read (dismiss, for dead ones) by id list or by filter; unknown or already read ones are skipped.

    One UPDATE … RETURNING takes exactly the rows it changed, so that each gets one operator action even while
    others mark the same events read concurrently.
    """
    chosen, considered = selection(ids, filters)
    return _mark_read_selection(actor, chosen, considered, now or timezone.now())


def _mark_read_selection(
    actor: Actor, chosen: EventQuerySet, considered: int | None, now: datetime
) -> BulkReadResult:
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    rows: list[tuple[str, str]] = []
    with transaction.atomic():
        if considered is None:
            considered = chosen.count()
        try:
            inner_sql, inner_params = unread(chosen).order_by().values("id").query.sql_with_params()
        except EmptyResultSet:  # an empty id list
            pass
        else:
            stamp = connection.ops.adapt_datetimefield_value(now)
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET read_at = %s, updated_at = %s WHERE read_at IS NULL AND id IN ({inner_sql}) "
                    "RETURNING id, status",
                    [stamp, stamp, *inner_params],
                )
                rows = cursor.fetchall()
        OperatorAction.objects.bulk_create(
            OperatorAction(
                event_id=event_id, action=ActionKind.MARK_READ, actor=actor.name, source=actor.source,
                bulk=True, previous_status=status,
            )
            for event_id, status in rows
        )
    dismissed = sum(1 for _, status in rows if status == Status.DEAD)
    log.info(
        "bulk mark read by %s via %s: %d marked read (%d dead ones dismissed), %d skipped",
        actor.name, actor.source, len(rows), dismissed, considered - len(rows),
        extra={"marked_read": len(rows), "dismissed": dismissed},
    )
    return BulkReadResult(marked_read=len(rows), skipped=max(considered - len(rows), 0), dismissed=dismissed)


# --- the dead-letter groups ---------------------------------------------------------


def requeue_group(
    actor: Actor, channel: str, kind: str, cause: str, filters: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkRequeueResult:
    """Requeue every event of a failure group: one set-based requeue, selected by the stored cause."""
    chosen = failure_group(channel, kind, cause, filters)
    return _requeue_selection(actor, chosen, chosen.count(), now or timezone.now())


def dismiss_group(
    actor: Actor, channel: str, kind: str, cause: str, filters: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkReadResult:
    """Dismiss (mark read) every event of a failure group, selected by the stored cause."""
    return _mark_read_selection(actor, failure_group(channel, kind, cause, filters), None, now or timezone.now())
