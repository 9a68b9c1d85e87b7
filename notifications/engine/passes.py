"""Passes: claim due events, send them, record the outcomes, until nothing is left or the pass's window closes.

A pass sends on one asyncio event loop (notifications.engine.sender) with at most CERTCTL_NOTIFICATION_CONCURRENCY
sends in flight and at most CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY of them to one destination, so that a
hanging receiver holds its share of the slots and no more; results are recorded in chunks (RECORD_CHUNK results or
every RECORD_EVERY seconds). The caller's thread does all the database work (claims and records), so that a pass
also runs inside a test's transaction.
"""
import logging
import queue
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Min
from django.utils import timezone

from notifications.engine import breaker, claims, dispatch
from notifications.engine.backoff import RetryPolicy
from notifications.engine.recording import record_results
from notifications.engine.report import LEASE_LOST, RELEASED, PassReport, pass_finished
from notifications.engine.sender import Delivery, Sender
from notifications.models import Channel, Destination, NotificationEvent, Status
from notifications.notifiers import (
    DeliveryResult,
    Notifier,
    build_destination_notifier,
    destination_problem,
    refresh_stored_secrets,
)

log = logging.getLogger("notifications.delivery")

# Results are written in chunks of this many, or at least this often while sends go on.
RECORD_CHUNK = 250
RECORD_EVERY = 0.25
# While sends are in flight, a pass that found nothing due looks again after this long (a burst keeps
# arriving while the first of it is delivered).
CLAIM_AGAIN_AFTER = 0.1
CLAIM_RETRY_PAUSE = 1.0

# A pass that finds nothing left stays while a retry comes due within RETRY_LINGER seconds (the schedules
# resolve to whole minutes), claiming again every LINGER_POLL seconds; never for a retry of a held destination, and
# never beyond claims.pass_window().
RETRY_LINGER = 10.0
LINGER_POLL = 0.5

PASS_KINDS = ("pending", "retry")

# Where a pass takes more events: given room for `limit`, the events claimed, or None when it could not look.
ClaimSource = Callable[[int], list[NotificationEvent] | None]


class Claims:
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
            held = breaker.hold_and_probes(self.now or timezone.now())
            events: list[NotificationEvent] = []
            for destination in held.probes:
                for kind in self.kinds:
                    probe = claims.claim_due_events(
                        kind, now=self.now, limit=1, lease=claims.claim_lease(), destination=destination
                    )
                    if probe:
                        claims.mark_probe(probe[0])
                        events += probe
                        break
            for kind in self.kinds:
                if len(events) < limit:
                    events += claims.claim_due_events(
                        kind, now=self.now, limit=limit - len(events), lease=claims.claim_lease(),
                        held_destinations=held.destinations,
                    )
        except DatabaseError as exc:
            moment = time.monotonic()
            self.failing_since = self.failing_since or moment
            if connection.in_atomic_block or moment - self.failing_since > claims.DATABASE_RETRY_FOR.total_seconds():
                raise
            log.warning(
                "claiming due events failed (%s: %s); trying again in %gs", type(exc).__name__, exc, CLAIM_RETRY_PAUSE
            )
            connection.close_if_unusable_or_obsolete()
            return None
        self.failing_since = None
        return events


class Pass:
    """One run of deliveries: sends `events` and, while there is room, those its claim source returns, until
    nothing is left.

    The claim source returns None when it could not look (the database is away): it is asked again after
    CLAIM_RETRY_PAUSE. After `deadline` (time.monotonic()) nothing more starts, except a first round so that a pass
    never starves; claimed events not started are released for the next pass.
    """

    def __init__(
        self, claim_more: ClaimSource | None, *, now: datetime | None, policy: RetryPolicy, deadline: float,
        per_event: bool = False,
    ):
        self.claim_more = claim_more
        self.now = now
        self.policy = policy
        self.deadline = deadline
        self.per_event = per_event
        concurrency = settings.CERTCTL_NOTIFICATION_CONCURRENCY
        self.concurrency = concurrency
        self.per_destination = min(settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY, concurrency)
        # The live destinations, read once per pass on its first event, and the notifier of each destination an
        # event of the pass names, built once (None: it cannot deliver; `problems` says why).
        self.destinations: dict[str, Destination] | None = None
        self.notifiers: dict[str, Notifier | None] = {}
        self.problems: dict[str, str] = {}
        self.waiting: dict[str, deque[tuple[NotificationEvent, Notifier]]] = {}
        self.in_flight: Counter[str] = Counter()
        self.unrecorded: list[Delivery] = []
        # A pass over 100,000 events keeps counts (new status, RELEASED or LEASE_LOST: how many events got it);
        # with per_event, each event's new status too (None when its lease was lost).
        self.outcomes: Counter[str] = Counter()
        self.statuses: dict[str, str | None] = {}
        self.claimed = 0
        self.cut_short = False  # the deadline came while there was more to claim
        self.more_to_claim = claim_more is not None
        self.next_claim_at = 0.0
        self.first_round = True
        self.last_flush = time.monotonic()
        self.sender: Sender | None = None

    def run(self, events: Sequence[NotificationEvent] = ()) -> "Pass":
        self.take(events)
        self.sender = Sender(self.per_destination, self.now)
        try:
            while self.step():
                self.wait_for_sends()
                if (
                    len(self.unrecorded) >= RECORD_CHUNK
                    or time.monotonic() - self.last_flush >= RECORD_EVERY
                    or (self.unrecorded and not self.in_flight.total())
                ):
                    self.flush()
            self.flush()
        finally:
            self.sender.close()
        return self

    def step(self) -> bool:
        """Claim and start what fits, or once the deadline has passed give back what waits. False when done."""
        moment = time.monotonic()
        if self.first_round or moment < self.deadline:
            if self.more_to_claim and moment >= self.next_claim_at:
                self.claim(moment)
            if self.start_what_fits():
                self.first_round = False
        else:
            late = [event for queued in self.waiting.values() for event, _ in queued]
            self.waiting.clear()
            self.cut_short = self.cut_short or self.more_to_claim or bool(late)
            self.more_to_claim = False
            self.release(late)
        return bool(self.in_flight.total() or any(self.waiting.values()) or self.more_to_claim)

    def outstanding(self) -> int:
        return self.in_flight.total() + sum(len(queued) for queued in self.waiting.values())

    def claim(self, moment: float) -> None:
        # Claim in batches of at least a full round of sends: a claim per freed slot would cost a round trip per event.
        outstanding = self.outstanding()
        room = 2 * self.concurrency - outstanding
        if room < self.concurrency:
            return
        assert self.claim_more is not None
        batch = self.claim_more(room)
        if batch is None:
            self.next_claim_at = moment + CLAIM_RETRY_PAUSE
        elif batch:
            self.claimed += len(batch)
            self.take(batch)
            self.next_claim_at = moment
        else:
            self.next_claim_at = moment + CLAIM_AGAIN_AFTER
            self.more_to_claim = outstanding > 0

    def take(self, batch: Iterable[NotificationEvent]) -> None:
        for event in batch:
            if event.destination not in self.notifiers:
                self.build_notifier(event.destination)
            notifier = self.notifiers[event.destination]
            if notifier is None:
                moment = self.now or timezone.now()
                failure = DeliveryResult.permanent_failure(self.problems[event.destination])
                self.unrecorded.append(Delivery(event, failure, moment, 0, moment))
            else:
                # Keyed by the server: the per-destination cap bounds the sends to one host, whichever
                # destinations share it.
                self.waiting.setdefault(notifier.destination, deque()).append((event, notifier))

    def build_notifier(self, name: str) -> None:
        if self.destinations is None:
            self.destinations = {destination.name: destination for destination in Destination.objects.live()}
        destination = self.destinations.get(name)
        if destination is None and name in Channel.values:
            # A flushed test database has lost the environment rows; their configuration is the settings anyway.
            destination = Destination(name=name, channel=name, from_environment=True)
        if destination is None:
            self.notifiers[name] = None
            self.problems[name] = f"destination {name} was removed; nothing delivers its events"
            return
        self.notifiers[name] = build_destination_notifier(destination)
        if self.notifiers[name] is None:
            self.problems[name] = destination_problem(destination) or f"destination {name} cannot deliver"

    def start_what_fits(self) -> bool:
        """Round-robin over destinations, each up to its cap, all together up to the concurrency."""
        starting: list[tuple[str, NotificationEvent, Notifier]] = []
        expiring: list[NotificationEvent] = []
        progressed = True
        while progressed:
            progressed = False
            for destination, queued in self.waiting.items():
                if (
                    queued
                    and self.in_flight[destination] < self.per_destination
                    and self.in_flight.total() < self.concurrency
                ):
                    event, notifier = queued.popleft()
                    progressed = True
                    if (
                        event.claimed_until
                        and event.claimed_until - (self.now or timezone.now()) < claims.lease_left_to_start()
                    ):
                        expiring.append(event)
                        continue
                    starting.append((destination, event, notifier))
                    self.in_flight[destination] += 1
        # Waited too long for a slot: another pass may claim it afresh (this one too, with a new lease).
        self.release(expiring)
        if starting:
            assert self.sender is not None
            self.sender.start(starting)
        return bool(starting)

    def release(self, events: list[NotificationEvent]) -> None:
        if events:
            claims.release_claims(events)
            for event in events:
                self.note(event.id, RELEASED)

    def wait_for_sends(self) -> None:
        """Wait for finished sends until the next flush or claim is due."""
        wake_at = self.last_flush + RECORD_EVERY
        if self.more_to_claim and self.outstanding() <= self.concurrency:
            wake_at = min(wake_at, self.next_claim_at)
        timeout = max(0.0, wake_at - time.monotonic())
        if not self.in_flight.total():
            time.sleep(timeout)
            return
        assert self.sender is not None
        try:
            destination, delivery = self.sender.finished.get(timeout=timeout)
            while True:
                self.in_flight[destination] -= 1
                self.unrecorded.append(delivery)
                destination, delivery = self.sender.finished.get_nowait()
        except queue.Empty:
            pass

    def flush(self) -> None:
        if self.unrecorded:
            for delivery, status in zip(self.unrecorded, record_results(self.unrecorded, self.policy), strict=True):
                self.note(delivery.event.id, status)
            self.unrecorded.clear()
        self.last_flush = time.monotonic()

    def note(self, event_id: str, status: str | None) -> None:
        self.outcomes[str(status) if status else LEASE_LOST] += 1
        if self.per_event:
            self.statuses[event_id] = status


def deliver_batch(
    events: Sequence[NotificationEvent],
    now: datetime | None = None,
    policy: RetryPolicy | None = None,
    deadline: float | None = None,
) -> list[str | None]:
    """Deliver events this worker has claimed. Returns each one's new status (None: the lease was lost;
    RELEASED: not started by `deadline`, time.monotonic(), default the start window, and given back)."""
    policy = policy or RetryPolicy.from_settings()
    deadline = time.monotonic() + claims.start_window() if deadline is None else deadline
    statuses = Pass(None, now=now, policy=policy, deadline=deadline, per_event=True).run(events).statuses
    return [statuses[event.id] for event in events]


def _next_retry_within(horizon: float) -> float | None:
    """Seconds until the earliest failed event no one holds is due for its retry, when that is within `horizon`.
    Retries of a held destination do not count: a paused one waits for a resume, an open one for its probe, which
    would keep a pass waiting probe after probe for as long as the receiver is down."""
    try:
        unheld = NotificationEvent.objects.unleased(timezone.now()).filter(status=Status.FAILED)
        due = unheld.exclude(destination__in=breaker.held_destinations()).aggregate(due=Min("next_retry_at"))["due"]
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
    refresh_stored_secrets()  # a destination's new secret is hidden from this pass's error texts and log lines on
    started = time.monotonic()
    deadline = started + claims.pass_window()
    source = Claims(kind, now, limit or settings.CERTCTL_NOTIFICATION_BATCH_SIZE)
    outcomes: Counter[str] = Counter()
    claimed = 0
    while True:
        delivered = Pass(source, now=now, policy=RetryPolicy.from_settings(), deadline=deadline).run()
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
    pass_finished(report, finished_at=now or timezone.now())
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
