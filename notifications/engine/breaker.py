"""Per-destination circuit breaker and maintenance pause: which destinations' events wait, and when to probe.

A receiver outage would otherwise dead-letter every event that comes due during it (1 + 2 + 4 + 8 minutes
of backoff is 15 minutes); a flaky receiver, one that fails some requests at random, is served best by the
retries alone. So the breaker opens on what marks a receiver as down, over the last
CERTCTL_CHANNEL_BREAKER_WINDOW:

- the failure rate: at least CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS attempts, of which at least
  CERTCTL_CHANNEL_BREAKER_FAILURE_RATE failed (as Convoy's breaker: a window, a minimum volume, a rate);
- or CERTCTL_CHANNEL_BREAKER_FAILURES consecutive transient failures spanning at least
  CERTCTL_CHANNEL_BREAKER_MIN_EVENTS distinct events, with no success within the window. A destination whose
  few events all fail opens after the same failures as ever; one that answers now and then does not.

Open, its due events are not claimed and spend no retries (failed ones have next_retry_at moved to the
next probe), and one due event is tried every CERTCTL_CHANNEL_BREAKER_PROBE. A failed probe is recorded as
an attempt but costs its event no retry; a success closes the breaker, the destination starts afresh (as one
that never failed), and the waiting events flow at once. Permanent failures never count, so one poison event
still goes dead after its own attempts. An operator's pause holds the events the same way, without probes, and so
does disabling the destination. The state is one row per destination (DestinationState), shared by every worker on
every host, changed under its row lock. Two destinations of one channel (two Slack workspaces) are told apart: an
outage of one opens its breaker only.

The window is two buckets of CERTCTL_CHANNEL_BREAKER_WINDOW: the current one, and the one before it weighted
by how much of it the window still covers. Successes count towards the rate only while the window holds a
failure (before, there is no rate to dilute); on a healthy destination they cost no lock, and only refresh the
time of the last success every tenth of the window, once the destination has a row.
"""
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from notifications.models import Destination, DestinationState, NotificationEvent, Status

log = logging.getLogger("notifications.breaker")


@dataclass(frozen=True)
class Held:
    """What a claim must leave alone now, and the destinations whose probe this worker has taken."""

    destinations: frozenset[str]
    probes: tuple[str, ...]


def _disabled() -> set[str]:
    return set(Destination.objects.live().filter(enabled=False).values_list("name", flat=True))


def _open_or_paused() -> set[str]:
    held = DestinationState.objects.filter(Q(opened_at__isnull=False) | Q(paused_at__isnull=False))
    return set(held.values_list("destination", flat=True))


def held_destinations() -> set[str]:
    """The destinations whose events wait: open (for a probe), paused or disabled (for an operator)."""
    return _open_or_paused() | _disabled()


def hold_and_probes(now: datetime) -> Held:
    """The destinations whose events wait (open, paused or disabled), and take the probe of each open one that is
    due."""
    disabled = _disabled()
    held = _open_or_paused() | disabled
    probes = []
    for destination in sorted(held - disabled):
        # A conditional UPDATE: of all workers claiming now, exactly one gets the probe.
        taken = DestinationState.objects.filter(
            destination=destination, opened_at__isnull=False, paused_at__isnull=True, next_probe_at__lte=now
        ).update(next_probe_at=now + settings.CERTCTL_CHANNEL_BREAKER_PROBE)
        if taken:
            probes.append(destination)
    return Held(frozenset(held), tuple(probes))


def paused_destinations() -> set[str]:
    """Destinations an operator holds (paused or disabled): their due retries wait for no probe, only for the
    operator."""
    paused = DestinationState.objects.filter(paused_at__isnull=False)
    return set(paused.values_list("destination", flat=True)) | _disabled()


@dataclass(frozen=True)
class Outcome:
    """One attempt as the breaker counts it."""

    destination: str
    event_id: str
    transient_failure: bool
    success: bool


def record(outcomes: Sequence[Outcome], now: datetime) -> None:
    """Count a chunk of attempts (in the caller's transaction, after their events were updated)."""
    counted = [o for o in outcomes if o.success or o.transient_failure]
    if not counted:
        return
    names = sorted({o.destination for o in counted})
    states = {s.destination_id: s for s in DestinationState.objects.filter(destination__in=names)}
    if all(o.success and (o.destination not in states or _healthy(states[o.destination], now)) for o in counted):
        # The common case, successes on a healthy destination: at most the time of the last success changes.
        _note_success(states.values(), now)
        return
    missing = [name for name in names if name not in states]
    if missing:
        if Destination.objects.filter(name__in=missing).count() < len(missing):
            # The state row points at its destination: a flushed test database has lost the environment ones.
            Destination.objects.ensure_environment()
        DestinationState.objects.bulk_create(
            [DestinationState(destination_id=name) for name in missing], ignore_conflicts=True
        )
    locked = {
        s.destination_id: s
        for s in DestinationState.objects.select_for_update().filter(destination__in=names).order_by("destination")
    }
    for name in names:
        _count(locked[name], [o for o in counted if o.destination == name], now)


def _note_success(states: Iterable[DestinationState], now: datetime) -> None:
    window: timedelta = settings.CERTCTL_CHANNEL_BREAKER_WINDOW
    stale_before = now - window / 10
    stale = [s.destination_id for s in states if s.last_success_at is None or s.last_success_at < stale_before]
    if stale:
        DestinationState.objects.filter(destination__in=stale).update(last_success_at=now)


def _healthy(state: DestinationState, now: datetime) -> bool:
    """Closed, and no failure in the window: a success changes nothing."""
    _slide(state, now)
    return state.opened_at is None and not state.consecutive_failures and not _failures_in_window(state)


def _slide(state: DestinationState, now: datetime) -> None:
    """Move the window on to `now`: a bucket that ended becomes the previous one, or both go once both ended."""
    window: timedelta = settings.CERTCTL_CHANNEL_BREAKER_WINDOW
    started = state.window_started_at
    if started is not None and now >= started + 2 * window:
        started = None
    if started is None:
        _start_afresh(state, now)
    elif now >= started + window:
        state.previous_window_successes, state.previous_window_failures = state.window_successes, state.window_failures
        state.window_successes = state.window_failures = 0
        state.window_started_at = started + window


def _start_afresh(state: DestinationState, now: datetime) -> None:
    state.window_started_at = now
    state.window_successes = state.window_failures = state.previous_window_successes = (
        state.previous_window_failures
    ) = 0


def _failures_in_window(state: DestinationState) -> int:
    return state.window_failures + state.previous_window_failures


def _window_rate(state: DestinationState, now: datetime) -> tuple[float, float]:
    """(attempts, failures) over the last window: the current bucket, and the previous one weighted by how much of
    it the window still covers (all of it for an outcome that finished before a later one moved the window on)."""
    window: timedelta = settings.CERTCTL_CHANNEL_BREAKER_WINDOW
    assert state.window_started_at is not None
    weight = max(0.0, 1 - max(timedelta(0), now - state.window_started_at) / window)
    failures = state.window_failures + weight * state.previous_window_failures
    attempts = failures + state.window_successes + weight * state.previous_window_successes
    return attempts, failures


def _opening_reason(state: DestinationState, now: datetime) -> str | None:
    """Why the breaker opens after this failure, or None while the receiver looks flaky rather than down."""
    window: timedelta = settings.CERTCTL_CHANNEL_BREAKER_WINDOW
    succeeded = state.last_success_at is not None and state.last_success_at > now - window
    if (
        not succeeded
        and state.consecutive_failures >= settings.CERTCTL_CHANNEL_BREAKER_FAILURES
        and len(state.failing_events) >= settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS
    ):
        return f"after {state.consecutive_failures} consecutive transient failures"
    attempts, failures = _window_rate(state, now)
    if (
        attempts >= settings.CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS
        and failures / attempts >= settings.CERTCTL_CHANNEL_BREAKER_FAILURE_RATE
    ):
        return f"with {failures:.0f} of {attempts:.0f} attempts failed within {window}"
    return None


def _count(state: DestinationState, outcomes: Iterable[Outcome], now: datetime) -> None:
    was_open, probe_at = state.opened_at is not None, state.next_probe_at
    _slide(state, now)
    reason = None
    for outcome in outcomes:
        if outcome.success:
            if state.opened_at is not None:
                # Closed by a success: the outage says nothing about the receiver any more.
                state.opened_at = state.next_probe_at = state.last_success_at = None
                _start_afresh(state, now)
            else:
                if _failures_in_window(state):
                    state.window_successes += 1
                if state.last_success_at is None or state.last_success_at < now:
                    state.last_success_at = now
            state.consecutive_failures, state.failing_events = 0, []
        else:
            state.consecutive_failures += 1
            state.window_failures += 1
            if outcome.event_id not in state.failing_events:
                state.failing_events = [*state.failing_events, outcome.event_id][
                    -settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS :
                ]
            if state.opened_at is None:
                reason = _opening_reason(state, now)
                if reason:
                    state.opened_at, state.next_probe_at = now, now + settings.CERTCTL_CHANNEL_BREAKER_PROBE
    state.save()
    name = state.destination_id
    failed_waiting = NotificationEvent.objects.filter(destination=name, status=Status.FAILED, claim_token__isnull=True)
    if state.opened_at is not None:
        # Waiting costs no retries: due and soon-due retries move to the next probe.
        failed_waiting.filter(next_retry_at__lt=state.next_probe_at).update(next_retry_at=state.next_probe_at)
        if not was_open:
            log.warning(
                "%s circuit breaker opened %s; its events wait, one is tried every %s",
                name, reason, settings.CERTCTL_CHANNEL_BREAKER_PROBE, extra={"destination": name},
            )
    elif was_open:
        # The retries that waited for the breaker are due now, not at the probe they were moved to.
        if probe_at is not None:
            failed_waiting.filter(next_retry_at__lte=probe_at).update(next_retry_at=now)
        log.warning("%s circuit breaker closed: a delivery succeeded; waiting events flow again", name,
                    extra={"destination": name})


def probe_wait_for(destination: str, now: datetime) -> datetime:
    """When a failed probe's event is due again: at the destination's next probe."""
    state = DestinationState.objects.filter(destination=destination).values_list("next_probe_at", flat=True).first()
    return state or now + settings.CERTCTL_CHANNEL_BREAKER_PROBE


@transaction.atomic
def pause(destination: str, actor_name: str, now: datetime) -> bool:
    """Hold the destination's events (it must exist). False when it was paused already."""
    DestinationState.objects.get_or_create(destination_id=destination)
    unpaused = DestinationState.objects.filter(destination=destination, paused_at__isnull=True)
    return bool(unpaused.update(paused_at=now, paused_by=actor_name))


@transaction.atomic
def resume(destination: str) -> bool:
    """Let the destination's events flow again. False when it was not paused."""
    paused = DestinationState.objects.filter(destination=destination, paused_at__isnull=False)
    return bool(paused.update(paused_at=None, paused_by=""))
