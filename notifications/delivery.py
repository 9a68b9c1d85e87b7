"""The delivery engine: claim due events, send them, record the outcomes. Nothing else delivers.

Protocol (DESIGN §2 "Delivery guarantee"):
1. claim: in a short transaction, pick due rows with FOR UPDATE SKIP LOCKED and stamp them with a lease
   (`claimed_until`, `claim_token`);
2. send: outside any transaction, on one asyncio event loop (its own thread), with at most
   CERTCTL_NOTIFICATION_CONCURRENCY sends in flight and at most CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY
   of them to one destination, so that a hanging receiver holds its share of the slots and no more;
3. record: in chunks (RECORD_CHUNK results or every RECORD_EVERY), one statement applies the outcomes to the
   events that still carry our `claim_token`, one insert writes the attempts; a result whose lease was lost
   is kept as an attempt but not applied.
A worker that dies between 1 and 3 leaves leases that expire, and the events are claimed again.

The caller's thread does all the database work (claims and records), so that a pass also runs inside a
test's transaction; the event loop thread only talks to receivers.
"""
import asyncio
import logging
import queue
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Min
from django.utils import timezone

from notifications import breaker, causes, dispatch, metrics
from notifications.backoff import RetryPolicy, after_failure
from notifications.models import AttemptOutcome, NotificationAttempt, NotificationEvent, Status
from notifications.notifiers import DeliveryResult, Notifier, build_notifier, configured_secrets, not_configured_error
from notifications.notifiers.http import new_http_client
from notifications.redaction import redact

log = logging.getLogger("notifications.delivery")

# Results are written in chunks of this many, or at least this often while sends go on.
RECORD_CHUNK = 250
RECORD_EVERY = 0.25
# While sends are in flight, a pass that found nothing due looks again after this long (a burst keeps
# arriving while the first of it is delivered).
CLAIM_AGAIN_AFTER = 0.1
# A database error while claiming or recording is retried for this long (well within the lease) before the
# pass gives up; results it could not record are delivered again after their lease.
DATABASE_RETRY_FOR = timedelta(seconds=30)
CLAIM_RETRY_PAUSE = 1.0

# A pass that finds nothing left stays while a retry comes due within RETRY_LINGER seconds (the schedules
# resolve to whole minutes), claiming again every LINGER_POLL seconds; never for a retry of a held channel, and
# never beyond pass_window().
RETRY_LINGER = 10.0
LINGER_POLL = 0.5

# The result of an event a pass claimed but did not start in time.
RELEASED = "released"
PASS_KINDS = ("pending", "retry")


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- claiming -----------------------------------------------------------------


_ORDER = {"pending": ("created_at", "id"), "retry": ("next_retry_at", "id")}


def claim_due_events(
    kind: str,
    now: datetime | None = None,
    limit: int | None = None,
    lease: timedelta | None = None,
    *,
    channel: str | None = None,
    held_channels: Collection[str] = (),
) -> list[NotificationEvent]:
    """Lease up to `limit` due events ("pending" or "retry") to this worker and return them: of `channel` only
    when given, and none of `held_channels` (open or paused, notifications.breaker).

    One statement: the inner SELECT walks the kind's partial index in its order and stops after `limit` rows,
    skipping rows another worker is claiming right now (SKIP LOCKED) rather than waiting; the UPDATE stamps
    them and RETURNING hands them back, so the claimed rows are never looked for again. SQLite has no row
    locks, but runs the statement alone.
    """
    now = _now(now)
    limit = limit or settings.CERTCTL_NOTIFICATION_BATCH_SIZE
    lease = lease or settings.CERTCTL_NOTIFICATION_LEASE
    token = secrets.token_hex(16)
    fields = NotificationEvent._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields if f.column)
    table = connection.ops.quote_name(NotificationEvent._meta.db_table)
    with transaction.atomic():
        due_here = NotificationEvent.objects.due(kind, now)
        if channel:
            due_here = due_here.filter(channel=channel)
        if held_channels:
            due_here = due_here.exclude(channel__in=held_channels)
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
            extra={"event_id": event.id, "channel": event.channel, "pass": kind},
        )
    return claimed


def release_claims(events: Iterable[NotificationEvent]) -> int:
    """Give back claims this worker will not use, so the next pass takes them now rather than at lease expiry."""
    ids_by_token: dict[str, list[str]] = {}
    for event in events:
        if event.claim_token:
            ids_by_token.setdefault(event.claim_token, []).append(event.id)
    return sum(
        NotificationEvent.objects.filter(claim_token=token, id__in=ids).update(claimed_until=None, claim_token=None)
        for token, ids in ids_by_token.items()
    )


def claim_lease() -> timedelta:
    """The lease a pass claims with: room for an event to wait up to one delivery for a send slot, then be
    delivered and its result recorded through a database blip (DATABASE_RETRY_FOR); at most
    CERTCTL_NOTIFICATION_LEASE. A worker killed mid-pass holds its claims this long, not a whole lease."""
    lease: timedelta = settings.CERTCTL_NOTIFICATION_LEASE
    return min(lease, 2 * timedelta(seconds=_delivery_bound()) + DATABASE_RETRY_FOR)


def lease_left_to_start() -> timedelta:
    """A send starts only while its event's lease has this long left (what claim_lease grants after one
    delivery's wait), so that its result is recorded before any other worker may claim the event again."""
    return claim_lease() - timedelta(seconds=_delivery_bound())


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


# --- sending ------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One finished attempt, waiting to be recorded."""

    event: NotificationEvent
    result: DeliveryResult
    started_at: datetime
    duration_ms: int
    finished_at: datetime


def _delivery_bound() -> float:
    """The longest one send may take: its connect and read timeouts (the lease is longer, settings check it)."""
    bound: timedelta = settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
    return bound.total_seconds()


async def send_event(event: NotificationEvent, notifier: Notifier, client: httpx.AsyncClient) -> DeliveryResult:
    """One delivery attempt over the event's channel; never raises."""
    try:
        if notifier.blocking:
            result = await notifier.send(event, client)  # a thread cannot be cut short; its own timeouts bound it
        else:
            async with asyncio.timeout(_delivery_bound()):
                result = await notifier.send(event, client)
    except TimeoutError:
        result = DeliveryResult.transient(
            f"{event.channel}: no complete answer within {_delivery_bound():g}s "
            "(CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + CERTCTL_NOTIFICATION_READ_TIMEOUT); will retry"
        )
    except Exception as exc:  # a notifier bug must cost one attempt, not the whole pass
        log.exception("notifier raised", extra={"event_id": event.id, "channel": event.channel})
        result = DeliveryResult.transient(f"internal error in the {event.channel} notifier: {type(exc).__name__}: {exc}")
    # Errors are logged and shown in the UI and the API; a receiver or an exception may quote any configured secret.
    return replace(result, error=redact(result.error, configured_secrets())) if result.error else result


class Sender:
    """An asyncio event loop on a thread of its own, performing sends; finished ones arrive on `finished`.

    Each send to an HTTP destination borrows a client with one keep-alive connection to it, kept for the
    pass; blocking notifiers (SMTP) run on the loop's executor, sized like the per-destination cap.
    """

    def __init__(self, blocking_workers: int, now: datetime | None):
        self.now = now
        self.finished: queue.SimpleQueue[tuple[str, Delivery]] = queue.SimpleQueue()
        self.idle_clients: dict[str, list[httpx.AsyncClient]] = {}
        self.loop = asyncio.new_event_loop()
        self.executor = ThreadPoolExecutor(max_workers=blocking_workers, thread_name_prefix="deliver-blocking")
        self.loop.set_default_executor(self.executor)
        self.thread = threading.Thread(target=self.loop.run_forever, name="deliver-loop", daemon=True)
        self.thread.start()

    def start(self, sends: Sequence[tuple[str, NotificationEvent, Notifier]]) -> None:
        """Start sends of (destination, event, notifier), waking the loop's thread once for the lot, not once a send."""
        asyncio.run_coroutine_threadsafe(self._send_all(sends), self.loop)

    async def _send_all(self, sends: Sequence[tuple[str, NotificationEvent, Notifier]]) -> None:
        await asyncio.gather(*(self._send(destination, event, notifier) for destination, event, notifier in sends))

    async def _send(self, destination: str, event: NotificationEvent, notifier: Notifier) -> None:
        idle = self.idle_clients.setdefault(destination, [])
        client = idle.pop() if idle else new_http_client()
        started_at = self.now or timezone.now()
        started = time.monotonic()
        try:
            result = await send_event(event, notifier, client)
        except BaseException as exc:  # cancelled at shutdown: the caller still waits for an answer
            result = DeliveryResult.transient(f"delivery interrupted ({type(exc).__name__}); will retry")
        idle.append(client)
        duration_ms = int((time.monotonic() - started) * 1000)
        self.finished.put((destination, Delivery(event, result, started_at, duration_ms, self.now or timezone.now())))

    async def _close_clients(self) -> None:
        for clients in self.idle_clients.values():
            for client in clients:
                await client.aclose()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_clients(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()
        self.executor.shutdown(wait=True)


def _limits() -> tuple[int, int]:
    concurrency = settings.CERTCTL_NOTIFICATION_CONCURRENCY
    return concurrency, min(settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY, concurrency)


class _Notifiers:
    """The notifier of each channel, built once per pass from the settings."""

    def __init__(self) -> None:
        self.by_channel: dict[str, Notifier | None] = {}

    def get(self, channel: str) -> Notifier | None:
        if channel not in self.by_channel:
            self.by_channel[channel] = build_notifier(channel)
        return self.by_channel[channel]


@dataclass
class _Delivered:
    outcomes: Counter[str]  # new status (or RELEASED, or "lease_lost"): how many events got it
    statuses: dict[str, str | None]  # with per_event: event id → new status, None when the lease was lost, or RELEASED
    claimed: int  # events claim_more returned
    cut_short: bool  # the deadline came while there was more to claim


def _deliver(
    events: Sequence[NotificationEvent],
    claim_more: Callable[[int], list[NotificationEvent] | None] | None,
    *,
    now: datetime | None,
    policy: RetryPolicy,
    deadline: float,
    per_event: bool = False,
) -> _Delivered:
    """Send `events` and, while there is room, those `claim_more(limit)` returns, until nothing is left.

    claim_more returns None when it could not look (the database is away): it is asked again after
    CLAIM_RETRY_PAUSE. After `deadline` (time.monotonic()) nothing more starts, except a first round so that
    a pass never starves; claimed events not started are released for the next pass.
    """
    concurrency, per_destination = _limits()
    notifiers = _Notifiers()
    waiting: dict[str, deque[tuple[NotificationEvent, Notifier]]] = {}
    in_flight: Counter[str] = Counter()
    statuses: dict[str, str | None] = {}
    outcomes: Counter[str] = Counter()
    expiring: list[NotificationEvent] = []
    unrecorded: list[Delivery] = []
    claimed_here = 0
    last_flush = time.monotonic()
    more_to_claim = claim_more is not None
    next_claim_at = 0.0
    first_round = True
    cut_short = False

    def note(event_id: str, status: str | None) -> None:
        # A pass over 100,000 events keeps counts, not a status per event.
        outcomes[str(status) if status else "lease_lost"] += 1
        if per_event:
            statuses[event_id] = status

    def take(batch: Iterable[NotificationEvent]) -> None:
        for event in batch:
            notifier = notifiers.get(event.channel)
            if notifier is None:
                moment = _now(now)
                failure = DeliveryResult.permanent_failure(not_configured_error(event.channel))
                unrecorded.append(Delivery(event, failure, moment, 0, moment))
            else:
                waiting.setdefault(notifier.destination, deque()).append((event, notifier))

    def start_what_fits() -> bool:
        """Round-robin over destinations, each up to its cap, all together up to the concurrency."""
        starting: list[tuple[str, NotificationEvent, Notifier]] = []
        progressed = True
        while progressed:
            progressed = False
            for destination, queued in waiting.items():
                if queued and in_flight[destination] < per_destination and in_flight.total() < concurrency:
                    event, notifier = queued.popleft()
                    if event.claimed_until and event.claimed_until - _now(now) < lease_left_to_start():
                        expiring.append(event)
                        progressed = True
                        continue
                    starting.append((destination, event, notifier))
                    in_flight[destination] += 1
                    progressed = True
        if expiring:
            # Waited too long for a slot: another pass may claim it afresh (this one too, with a new lease).
            release_claims(expiring)
            for event in expiring:
                note(event.id, RELEASED)
            expiring.clear()
        if starting:
            sender.start(starting)
        return bool(starting)

    def flush() -> None:
        nonlocal last_flush
        if unrecorded:
            for delivery, status in zip(unrecorded, record_results(unrecorded, policy), strict=True):
                note(delivery.event.id, status)
            unrecorded.clear()
        last_flush = time.monotonic()

    take(events)
    sender = Sender(per_destination, now)
    try:
        while True:
            moment = time.monotonic()
            starting = first_round or moment < deadline
            outstanding = in_flight.total() + sum(len(queued) for queued in waiting.values())
            room = 2 * concurrency - outstanding
            # Claim in batches of at least a full round of sends: a claim per freed slot would cost a round
            # trip per event.
            if starting and more_to_claim and room >= concurrency and moment >= next_claim_at:
                assert claim_more is not None
                batch = claim_more(room)
                if batch is None:
                    next_claim_at = moment + CLAIM_RETRY_PAUSE
                elif batch:
                    claimed_here += len(batch)
                    take(batch)
                    next_claim_at = moment
                else:
                    next_claim_at = moment + CLAIM_AGAIN_AFTER
                    more_to_claim = outstanding > 0
            if starting:
                if start_what_fits():
                    first_round = False
            else:
                late = [event for queued in waiting.values() for event, _ in queued]
                waiting.clear()
                cut_short = cut_short or more_to_claim or bool(late)
                more_to_claim = False
                if late:
                    release_claims(late)
                    for event in late:
                        note(event.id, RELEASED)
            if not in_flight.total() and not any(waiting.values()) and not more_to_claim:
                break

            wake_at = last_flush + RECORD_EVERY
            if more_to_claim and in_flight.total() + sum(len(q) for q in waiting.values()) <= concurrency:
                wake_at = min(wake_at, next_claim_at)
            timeout = max(0.0, wake_at - time.monotonic())
            if in_flight.total():
                try:
                    destination, delivery = sender.finished.get(timeout=timeout)
                    while True:
                        in_flight[destination] -= 1
                        unrecorded.append(delivery)
                        destination, delivery = sender.finished.get_nowait()
                except queue.Empty:
                    pass
            else:
                time.sleep(timeout)
            if (
                len(unrecorded) >= RECORD_CHUNK
                or time.monotonic() - last_flush >= RECORD_EVERY
                or (unrecorded and not in_flight.total())
            ):
                flush()
        flush()
    finally:
        sender.close()
    return _Delivered(outcomes, statuses, claimed_here, cut_short)


def deliver_batch(
    events: Sequence[NotificationEvent], now: datetime | None = None, policy: RetryPolicy | None = None, deadline: float | None = None
) -> list[str | None]:
    """Deliver events this worker has claimed. Returns each one's new status (None: the lease was lost;
    RELEASED: not started by `deadline`, time.monotonic(), default the start window, and given back)."""
    policy = policy or RetryPolicy.from_settings()
    deadline = time.monotonic() + start_window() if deadline is None else deadline
    statuses = _deliver(events, None, now=now, policy=policy, deadline=deadline, per_event=True).statuses
    return [statuses[event.id] for event in events]


# --- recording ----------------------------------------------------------------


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
        wait_until = breaker.probe_wait_for(event.channel, delivery.finished_at) if event.status == Status.FAILED else None
        return _Outcome(AttemptOutcome.TRANSIENT_FAILURE, event.status, event.retry_count, wait_until, result.error, None)
    decision = after_failure(event.retry_count, delivery.finished_at, policy, permanent=result.permanent, retry_after=result.retry_after)
    outcome = AttemptOutcome.PERMANENT_FAILURE if result.permanent else AttemptOutcome.TRANSIENT_FAILURE
    if decision.status != Status.DEAD:
        return _Outcome(outcome, decision.status, decision.retry_count, decision.next_retry_at, result.error, None)
    cause, cause_kind = causes.dead_cause(result.error, permanent=result.permanent)
    return _Outcome(outcome, decision.status, decision.retry_count, decision.next_retry_at, result.error, None, cause, cause_kind)


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
                            channel=d.event.channel, event_id=d.event.id, success=d.result.ok,
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
                    "could not record %d delivery results (%s: %s); their events will be delivered again after their lease",
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
    if connection.vendor == "postgresql":
        applied_numbers = _apply_postgresql(attempts)
    else:
        applied_numbers = _apply_each(attempts)
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
    claimed_until = NULL, claim_token = NULL, updated_at = v.updated_at, last_attempt_at = v.updated_at,
    cause = v.cause, cause_kind = v.cause_kind
FROM unnest(
    %s::varchar[], %s::varchar[], %s::varchar[], %s::int[], %s::timestamptz[], %s::text[], %s::timestamptz[], %s::timestamptz[],
    %s::varchar[], %s::varchar[]
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
    with connection.cursor() as cursor:
        cursor.execute(_APPLY_SQL, columns)
        return dict(cursor.fetchall())


def _apply_each(attempts: Sequence[tuple[Delivery, _Outcome]]) -> dict[str, int]:
    """The same, a statement per event, for SQLite (the embedded default, where statements cost no round trip)."""
    applied: dict[str, int] = {}
    for delivery, outcome in attempts:
        changes: dict[str, Any] = dict(
            status=outcome.status, retry_count=outcome.retry_count, next_retry_at=outcome.next_retry_at,
            last_error=outcome.last_error, attempt_count=F("attempt_count") + 1, claimed_until=None, claim_token=None,
            updated_at=delivery.finished_at, last_attempt_at=delivery.finished_at, cause=outcome.cause,
            cause_kind=outcome.cause_kind,
        )
        if outcome.sent_at:
            changes["sent_at"] = outcome.sent_at
        event = NotificationEvent.objects.filter(id=delivery.event.id, claim_token=delivery.event.claim_token)
        if delivery.event.claim_token and event.update(**changes):
            applied[delivery.event.id] = NotificationEvent.objects.filter(id=delivery.event.id).values_list("attempt_count", flat=True).get()
    return applied


def _log_attempt(delivery: Delivery, outcome: _Outcome, number: int, status: str | None) -> None:
    event, result = delivery.event, delivery.result
    extra = {
        "event_id": event.id, "channel": event.channel, "attempt": number, "outcome": outcome.outcome,
        "duration_ms": delivery.duration_ms, "status": status, "http_status": result.http_status,
    }
    attempt = f"attempt {number} of event {event.id} via {event.channel}: {outcome.outcome} in {delivery.duration_ms}ms"
    if status is None:
        log.warning("%s, not applied: the lease was lost (requeued or expired meanwhile)", attempt, extra=extra)
    elif result.ok:
        log.info("%s, now sent", attempt, extra=extra)
    else:
        log.warning("%s, now %s: %s", attempt, status, result.error, extra=extra)


# --- passes -------------------------------------------------------------------


@dataclass
class PassReport:
    """What one pending pass or retry sweep did."""

    kind: str
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "claimed": self.claimed, "outcomes": self.outcomes, "duration_s": round(self.duration_s, 3)}


_PROBE_MARK = "breaker_probe"


def is_probe(event: NotificationEvent) -> bool:
    """Whether this claimed event is its open channel's probe (notifications.breaker)."""
    return bool(getattr(event, _PROBE_MARK, False))


class _Claims:
    """Where a pass takes its events: its own kind first, then the other, so that one running pass also serves
    what the other schedule would (a kick during a burst takes due retries too). A database error pauses
    claiming instead of ending the pass, for up to DATABASE_RETRY_FOR; the pass then fails and its task is
    retried."""

    def __init__(self, kind: str, now: datetime | None, chunk: int):
        self.kinds = (kind, *(other for other in PASS_KINDS if other != kind))
        self.now = now
        self.chunk = chunk
        self.failing_since: float | None = None

    def __call__(self, room: int) -> list[NotificationEvent] | None:
        limit = min(room, self.chunk)
        try:
            held = breaker.hold_and_probes(_now(self.now))
            events: list[NotificationEvent] = []
            for channel in held.probes:
                for kind in self.kinds:
                    probe = claim_due_events(kind, now=self.now, limit=1, lease=claim_lease(), channel=channel)
                    if probe:
                        setattr(probe[0], _PROBE_MARK, True)
                        events += probe
                        break
            for kind in self.kinds:
                if len(events) < limit:
                    events += claim_due_events(
                        kind, now=self.now, limit=limit - len(events), lease=claim_lease(), held_channels=held.channels
                    )
        except DatabaseError as exc:
            moment = time.monotonic()
            self.failing_since = self.failing_since or moment
            if connection.in_atomic_block or moment - self.failing_since > DATABASE_RETRY_FOR.total_seconds():
                raise
            log.warning("claiming due events failed (%s: %s); trying again in %gs", type(exc).__name__, exc, CLAIM_RETRY_PAUSE)
            connection.close_if_unusable_or_obsolete()
            return None
        self.failing_since = None
        return events


def _next_retry_within(horizon: float) -> float | None:
    """Seconds until the earliest failed event no one holds is due for its retry, when that is within `horizon`.
    Retries of a held channel do not count: a paused one waits for a resume, an open one for its probe, which
    would keep a pass waiting probe after probe for as long as the receiver is down."""
    try:
        unheld = NotificationEvent.objects.unleased(timezone.now()).filter(status=Status.FAILED)
        due = unheld.exclude(channel__in=breaker.held_channels()).aggregate(due=Min("next_retry_at"))["due"]
    except DatabaseError:
        return None
    if due is None:
        return None
    wait = (due - timezone.now()).total_seconds()
    return max(0.0, wait) if wait <= horizon else None


def run_pass(kind: str, now: datetime | None = None, limit: int | None = None) -> PassReport:
    """Claim and deliver due events, `kind` ("pending" or "retry") first, until none is left or pass_window()
    closes; then, if there was more, ask for a kick so that the rest follows at once.

    Claims take at most `limit` (default CERTCTL_NOTIFICATION_BATCH_SIZE) events at a time, and only as many
    as the free send slots can take soon, so a burst arriving during the pass is picked up as it comes.
    """
    if kind not in PASS_KINDS:
        raise ValueError(kind)
    started = time.monotonic()
    deadline = started + pass_window()
    claims = _Claims(kind, now, limit or settings.CERTCTL_NOTIFICATION_BATCH_SIZE)
    outcomes: Counter[str] = Counter()
    claimed = 0
    while True:
        delivered = _deliver((), claims, now=now, policy=RetryPolicy.from_settings(), deadline=deadline)
        outcomes.update(delivered.outcomes)
        claimed += delivered.claimed
        wait = None if now is not None or delivered.cut_short else _next_retry_within(RETRY_LINGER)
        if wait is None or time.monotonic() + wait >= deadline:
            break
        # Claiming again every LINGER_POLL also takes what is created meanwhile.
        time.sleep(min(max(wait, CLAIM_AGAIN_AFTER), LINGER_POLL))
    report = PassReport(kind=kind, claimed=claimed, outcomes=dict(outcomes), duration_s=time.monotonic() - started)
    released = report.outcomes.get(RELEASED)
    if released:
        log.warning("%d claimed events not started in time (slow receivers): released for the next pass", released)
    metrics.pass_finished(report, finished_at=_now(now))
    if claimed:
        log.info("%s pass: %d claimed, %s", kind, claimed, report.outcomes, extra={"pass": kind})
    if delivered.cut_short:
        dispatch.request_kick()
    try:
        dispatch.wake_retry_sweep()
    except DatabaseError as exc:
        log.warning("could not bring the retry sweep forward (%s); retries wait for its next tick", exc)
    return report


def process_pending(now: datetime | None = None, limit: int | None = None) -> PassReport:
    """Deliver pending events until none is left."""
    return run_pass("pending", now=now, limit=limit)


def retry_sweep(now: datetime | None = None, limit: int | None = None) -> PassReport:
    """Retry failed events whose next_retry_at has come, until none is left."""
    return run_pass("retry", now=now, limit=limit)
