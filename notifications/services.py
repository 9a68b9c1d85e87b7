"""Operator-facing state changes of notification events: create, requeue, mark read; and the reads they need.

The REST API, web UI, admin, CLI and MCP server call these functions; the delivery engine
(notifications.delivery) makes the other state changes. Nothing else writes `status`.
Functions take `now` so that tests control the clock.
"""
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifications.actors import Actor
from notifications.engine import breaker, dispatch
from notifications.errors import (  # noqa: F401  (the interfaces still reach the errors through services)
    EventIdTaken,
    EventNotFound,
    InvalidInput,
    RequeueRefused,
    ServiceError,
    UnknownChannel,
)
from notifications.filtersets import FILTER_NAMES, NotificationFilterSet, form_errors
from notifications.models import (
    ActionKind,
    CauseKind,
    Channel,
    ChannelAction,
    ChannelActionKind,
    ChannelState,
    EventType,
    NotificationEvent,
    OperatorAction,
    Severity,
    Status,
    event_id_problem,
)
from notifications.notifiers import channel_status
from notifications.queries import counts
from notifications.queries.summary import stats_summary  # noqa: F401  (the interfaces still read it through services)

log = logging.getLogger("notifications.services")

REQUEUEABLE = (Status.FAILED, Status.DEAD)
MAX_BULK_IDS = 10_000
EVENT_ID_MAX_LENGTH = NotificationEvent._meta.get_field("id").max_length
SAMPLE_SIZE = 20


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
    if event_id is not None and (problem := event_id_problem(event_id)):
        errors["id"] = problem
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


# A requeue starts a new delivery cycle, which is unread again and has no dead-letter cause.
_REQUEUE_CHANGES = dict(
    status=Status.PENDING, retry_count=0, next_retry_at=None, last_error=None, claimed_until=None, claim_token=None,
    read_at=None, cause=None, cause_kind=None,
)


def filter_events(events: QuerySet[NotificationEvent], filters: Mapping[str, Any]) -> QuerySet[NotificationEvent]:
    """Apply list filters (notifications.filtersets, the same set as every list): unknown names or bad values raise
    InvalidInput naming the field."""
    errors = {name: f"not a notification filter; use {', '.join(FILTER_NAMES)}" for name in sorted(set(filters) - set(FILTER_NAMES))}
    if errors:
        raise InvalidInput(errors)
    filterset = NotificationFilterSet(data={name: str(value) for name, value in filters.items()}, queryset=events)
    if not filterset.is_valid():
        raise InvalidInput(form_errors(filterset.form))
    return filterset.qs


def _bulk_selection(
    ids: Iterable[str] | None, filters: Mapping[str, Any] | None
) -> tuple[QuerySet[NotificationEvent], int | None]:
    """The events a bulk action names, and how many it considered (for the skipped count)."""
    if ids is not None:
        ids = list(dict.fromkeys(str(i) for i in ids))
        if len(ids) > MAX_BULK_IDS:
            raise InvalidInput({"ids": f"{len(ids)} ids given; at most {MAX_BULK_IDS} per call"})
        # Impossible ids are unknown ids: skipped, like any other.
        return NotificationEvent.objects.filter(id__in=[i for i in ids if not _impossible_id(i)]), len(ids)
    filters = filters_given(filters)
    if not filters:
        raise InvalidInput(
            {"ids": f"give a list of ids or at least one filter ({', '.join(FILTER_NAMES)})"}
        )
    selection = filter_events(NotificationEvent.objects.all(), filters)
    return selection, None


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
            NotificationEvent.objects.unleased(now).filter(id=event_id, status__in=REQUEUEABLE)
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


@dataclass(frozen=True)
class BulkPreview:
    """What a bulk action would do: how many events it would change, how many it would skip, some of their ids."""

    would_change: int
    skipped: int
    sample: list[str]


def _requeueable(selection: QuerySet[NotificationEvent], now: datetime) -> QuerySet[NotificationEvent]:
    return selection.unleased(now).filter(status__in=REQUEUEABLE)


def _unread(selection: QuerySet[NotificationEvent]) -> QuerySet[NotificationEvent]:
    return selection.filter(read_at__isnull=True)


def _preview(selection: QuerySet[NotificationEvent], considered: int | None, eligible: QuerySet[NotificationEvent]) -> BulkPreview:
    count = eligible.count()
    if considered is None:
        considered = selection.count()
    sample = list(eligible.order_by("-created_at", "-id").values_list("id", flat=True)[:SAMPLE_SIZE])
    return BulkPreview(would_change=count, skipped=max(considered - count, 0), sample=sample)


def preview_requeue(
    ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None, now: datetime | None = None
) -> BulkPreview:
    """A dry run of requeue_events: the same selection and conditions, nothing changes."""
    selection, considered = _bulk_selection(ids, filters)
    return _preview(selection, considered, _requeueable(selection, _now(now)))


def preview_mark_read(ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None) -> BulkPreview:
    """A dry run of mark_read_events: the same selection and conditions, nothing changes."""
    selection, considered = _bulk_selection(ids, filters)
    return _preview(selection, considered, _unread(selection))


# How many requeued ids the summary log line of a bulk requeue names.
LOG_SAMPLE = 10


def requeue_events(actor, ids=None, filters=None, now=None):
    """Requeue many events by id list or by filter; anything not failed/dead (or unknown), or leased to a worker
    right now, is skipped.

    Set-based: on PostgreSQL one statement locks the eligible rows, moves them (UPDATE … RETURNING) and writes
    one operator action per event (INSERT … SELECT), so 100,000 events cost one statement and one summary log
    line with a sample of ids.
    """
    selection, considered = _bulk_selection(ids, filters)
    if considered is None:
        considered = counts.matching(filters_given(filters))
        if considered is None:
            considered = selection.count()
    return _requeue_selection(actor, selection, considered, _now(now))


def _requeue_selection(
    actor: Actor, selection: QuerySet[NotificationEvent], considered: int, now: datetime
) -> BulkRequeueResult:
    eligible = selection.unleased(now).filter(status__in=REQUEUEABLE).order_by()
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


def filters_given(filters: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (filters or {}).items() if v not in (None, "")}


# `picked` locks the eligible rows (skipping any a worker is claiming right now); locked, each is certainly
# updated, so the audit rows come straight from it. The UPDATE finds the rows by their physical address (a
# TID scan): no index probe per row, no scan of the table.
_REQUEUE_SQL = """
WITH picked AS ({eligible}),
changed AS (
    UPDATE {events} SET status = %s, retry_count = 0, next_retry_at = NULL, last_error = NULL,
        claimed_until = NULL, claim_token = NULL, read_at = NULL, cause = NULL, cause_kind = NULL, updated_at = %s
    WHERE ctid = ANY(ARRAY(SELECT ctid FROM picked))
    RETURNING id
),
logged AS (
    INSERT INTO {actions} (event_id, action, actor, source, bulk, previous_status, created_at)
    SELECT id, %s, %s, %s, true, status, %s FROM picked
)
SELECT (SELECT count(*) FROM changed), ARRAY(SELECT id FROM changed LIMIT %s)
"""


def _requeue_postgresql(eligible: QuerySet[NotificationEvent], actor: Actor, now: datetime) -> tuple[int, list[str]]:
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
    sql = _REQUEUE_SQL.format(
        eligible=eligible_sql,
        events=table,
        actions=connection.ops.quote_name(OperatorAction._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            # created_at as auto_now_add sets it for a single requeue: the real time of the action.
            [*eligible_params, Status.PENDING, now, ActionKind.REQUEUE, actor.name, actor.source, timezone.now(), LOG_SAMPLE],
        )
        requeued, sample = cursor.fetchone()
    return requeued, list(sample)


def _requeue_each_chunk(eligible: QuerySet[NotificationEvent], actor: Actor, now: datetime) -> tuple[int, list[str]]:
    """The same for SQLite (no data-modifying WITH), a thousand events per UPDATE.

    The caller's transaction holds SQLite's write lock from its start (transaction_mode IMMEDIATE in settings), so
    no worker or operator can change the listed rows before they are updated: each is certainly requeued.
    """
    rows = list(eligible.values_list("id", "status"))
    for start in range(0, len(rows), 1000):
        chunk = rows[start : start + 1000]
        NotificationEvent.objects.filter(id__in=[event_id for event_id, _ in chunk]).update(updated_at=now, **_REQUEUE_CHANGES)
        OperatorAction.objects.bulk_create(
            OperatorAction(
                event_id=event_id, action=ActionKind.REQUEUE, actor=actor.name, source=actor.source,
                bulk=True, previous_status=status,
            )
            for event_id, status in chunk
        )
    return len(rows), [event_id for event_id, _ in rows[:LOG_SAMPLE]]


def mark_read(event_id, actor, now=None):
    """Record the operator's acknowledgement (for a dead event: dismiss it from the dead-letter queue).

    Delivery state is untouched: unlike certctl, acknowledging never cancels a pending e-mail or page.
    Marking twice keeps the first time.
    """
    if _impossible_id(event_id):
        raise EventNotFound(event_id)
    now = _now(now)
    with transaction.atomic():
        current = NotificationEvent.objects.filter(id=event_id).values_list("status", flat=True).first()
        if current is None:
            raise EventNotFound(event_id)
        updated = NotificationEvent.objects.filter(id=event_id, read_at__isnull=True).update(read_at=now, updated_at=now)
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
    actor: Actor, ids: Iterable[str] | None = None, filters: dict[str, str] | None = None, now: datetime | None = None
) -> BulkReadResult:
    """Mark many events read (dismiss, for dead ones) by id list or by filter; unknown or already read ones are skipped.

    One UPDATE … RETURNING takes exactly the rows it changed, so that each gets one operator action even while
    others mark the same events read concurrently.
    """
    selection, considered = _bulk_selection(ids, filters)
    return _mark_read_selection(actor, selection, considered, _now(now))


def _mark_read_selection(
    actor: Actor, selection: QuerySet[NotificationEvent], considered: int | None, now: datetime
) -> BulkReadResult:
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    rows = []
    with transaction.atomic():
        if considered is None:
            considered = selection.count()
        try:
            inner_sql, inner_params = _unread(selection).order_by().values("id").query.sql_with_params()
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


# --- reading ------------------------------------------------------------------


def retry_display(event):
    """"Retry n/max" as operators read it: a dead event after five failures shows 5/5."""
    return f"Retry {event.retry_count}/{settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS}"


# --- channels -----------------------------------------------------------------


def _channel(name: str) -> str:
    # Operators type channel names; any letter case names the channel.
    canonical = {value.lower(): value for value in Channel.values}.get(str(name).lower())
    if canonical is None:
        raise UnknownChannel(name)
    return canonical


def channel_states() -> list[dict[str, object]]:
    """Every channel with its breaker/pause state, for the API, UI, CLI, MCP and /metrics."""
    rows = {state.channel: state for state in ChannelState.objects.all()}
    configured = channel_status()
    listing = []
    for name in Channel.values:
        state = rows.get(name) or ChannelState(channel=name)
        listing.append({
            "name": name,
            "configured": configured[name][0],
            "state": state.state,
            "since": state.paused_at or state.opened_at,
            "paused_by": state.paused_by or None,
            "consecutive_failures": state.consecutive_failures,
            "next_probe_at": state.next_probe_at if state.opened_at and not state.paused_at else None,
        })
    return listing


def pause_channel(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Hold a channel's events (a maintenance window) until resumed; audited. False when it was paused already."""
    channel, now = _channel(name), _now(now)
    with transaction.atomic():
        changed = breaker.pause(channel, actor.name, now)
        if changed:
            ChannelAction.objects.create(channel=channel, action=ChannelActionKind.PAUSE, actor=actor.name, source=actor.source, created_at=now)
    if changed:
        log.warning("channel %s paused by %s via %s: its events wait until it is resumed", channel, actor.name, actor.source,
                    extra={"channel": channel})
    return changed


def resume_channel(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Let a paused channel's events flow again; audited. False when it was not paused."""
    channel, now = _channel(name), _now(now)
    with transaction.atomic():
        changed = breaker.resume(channel)
        if changed:
            ChannelAction.objects.create(channel=channel, action=ChannelActionKind.RESUME, actor=actor.name, source=actor.source, created_at=now)
    if changed:
        log.warning("channel %s resumed by %s via %s", channel, actor.name, actor.source, extra={"channel": channel})
        dispatch.deliver_soon()
    return changed


# --- failure groups -----------------------------------------------------------


@dataclass
class FailureGroup:
    channel: str
    kind: str
    error: str
    count: int
    first_at: datetime
    last_at: datetime
    sample_id: str


def dead_letter(filters: Mapping[str, Any] | None = None) -> QuerySet[NotificationEvent]:
    """Dead events matching the list filters; without a `status`, `delivery_status` or `read` filter, only those
    not dismissed (the Dead letter tab's content)."""
    filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    events = filter_events(NotificationEvent.objects.filter(status=Status.DEAD), filters)
    if not {"status", "delivery_status", "read"} & set(filters):
        events = events.filter(read_at__isnull=True)
    return events


def _failed_at() -> Coalesce:
    """When a dead event failed for the last time: its latest attempt, or its creation if it never had one."""
    return Coalesce("last_attempt_at", "created_at")


class _OncePerGroup(Subquery):
    """A subquery that refers to the grouped columns only. Django would add it to the GROUP BY, which makes
    PostgreSQL run it for every row; left out, it runs once per group."""

    def get_group_by_cols(self) -> list:
        return []


def failure_groups(filters: Mapping[str, Any] | None = None) -> list[FailureGroup]:
    """The dead-letter queue grouped by channel and stored cause (notifications.causes), largest group first,
    then the one that failed last.

    One statement: a GROUP BY over the cause columns, which the dead-letter queue's index (notif_dead_cause_idx)
    holds in group order; each group's sample, the event that failed last, is the first entry of its group in that
    index. No error text is read.
    """
    events = dead_letter(filters)
    sample = (
        events.filter(channel=OuterRef("channel"), cause_kind=OuterRef("cause_kind"), cause=OuterRef("cause"))
        .order_by(_failed_at().desc(), "-created_at", "-id")
        .values("id")[:1]
    )
    rows = (
        events.order_by()
        .values("channel", "cause_kind", "cause")
        .annotate(count=Count("*"), first_at=Min(_failed_at()), last_at=Max(_failed_at()), sample_id=_OncePerGroup(sample))
        .order_by("-count", "-last_at", "channel", "cause_kind", "cause")
    )
    return [
        FailureGroup(
            channel=row["channel"], kind=row["cause_kind"], error=row["cause"], count=row["count"],
            first_at=row["first_at"], last_at=row["last_at"], sample_id=row["sample_id"],
        )
        for row in rows
    ]


def failure_group(
    channel: str, kind: str, cause: str, filters: Mapping[str, Any] | None = None
) -> QuerySet[NotificationEvent]:
    """The dead events of one failure group (as failure_groups names it) under the list filters."""
    if kind not in CauseKind.values:
        raise InvalidInput({"kind": f"unknown kind {kind!r}; expected one of {', '.join(CauseKind.values)}"})
    return dead_letter(filters).filter(channel=channel, cause_kind=kind, cause=cause)


def requeue_group(
    actor: Actor, channel: str, kind: str, cause: str, filters: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkRequeueResult:
    """Requeue every event of a failure group: one set-based requeue, selected by the stored cause."""
    selection = failure_group(channel, kind, cause, filters)
    return _requeue_selection(actor, selection, selection.count(), _now(now))


def dismiss_group(
    actor: Actor, channel: str, kind: str, cause: str, filters: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> BulkReadResult:
    """Dismiss (mark read) every event of a failure group, selected by the stored cause."""
    return _mark_read_selection(actor, failure_group(channel, kind, cause, filters), None, _now(now))
