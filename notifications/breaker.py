"""Per-channel circuit breaker and maintenance pause: which channels' events wait, and when to probe.

A receiver outage would otherwise dead-letter every event that comes due during it (1 + 2 + 4 + 8 minutes
of backoff is 15 minutes). After CERTCTL_CHANNEL_BREAKER_FAILURES consecutive transient failures spanning
at least CERTCTL_CHANNEL_BREAKER_MIN_EVENTS distinct events the channel opens: its due events are not
claimed and spend no retries (failed ones have next_retry_at moved to the next probe), and one due event is
tried every CERTCTL_CHANNEL_BREAKER_PROBE. A failed probe is recorded as an attempt but costs its event no
retry; a success closes the breaker and the waiting events flow at once. Permanent failures never count, so
one poison event still goes dead after its own attempts. An operator's pause holds the events the same way,
without probes. The state is one row per channel (ChannelState), shared by every worker on every host.
"""
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from notifications.models import ChannelState, NotificationEvent, Status

log = logging.getLogger("notifications.breaker")


@dataclass(frozen=True)
class Held:
    """What a claim must leave alone now, and the channels whose probe this worker has taken."""

    channels: frozenset[str]
    probes: tuple[str, ...]


def hold_and_probes(now: datetime) -> Held:
    """The channels whose events wait (open or paused), and take the probe of each open one that is due."""
    held = set(ChannelState.objects.filter(Q(opened_at__isnull=False) | Q(paused_at__isnull=False)).values_list("channel", flat=True))
    probes = []
    for channel in sorted(held):
        # A conditional UPDATE: of all workers claiming now, exactly one gets the probe.
        taken = ChannelState.objects.filter(
            channel=channel, opened_at__isnull=False, paused_at__isnull=True, next_probe_at__lte=now
        ).update(next_probe_at=now + settings.CERTCTL_CHANNEL_BREAKER_PROBE)
        if taken:
            probes.append(channel)
    return Held(frozenset(held), tuple(probes))


def paused_channels() -> set[str]:
    """Channels an operator holds: their due retries wait for no probe, only for a resume."""
    return set(ChannelState.objects.filter(paused_at__isnull=False).values_list("channel", flat=True))


@dataclass(frozen=True)
class Outcome:
    """One attempt as the breaker counts it."""

    channel: str
    event_id: str
    transient_failure: bool
    success: bool


def record(outcomes: Sequence[Outcome], now: datetime) -> None:
    """Count a chunk of attempts (in the caller's transaction, after their events were updated)."""
    counted = [o for o in outcomes if o.success or o.transient_failure]
    if not counted:
        return
    channels = sorted({o.channel for o in counted})
    states = {s.channel: s for s in ChannelState.objects.filter(channel__in=channels)}
    quiet = all(
        o.success and (o.channel not in states or (not states[o.channel].consecutive_failures and not states[o.channel].opened_at))
        for o in counted
    )
    if quiet:
        return  # the common case: successes on a healthy channel change nothing
    ChannelState.objects.bulk_create([ChannelState(channel=c) for c in channels if c not in states], ignore_conflicts=True)
    locked = {s.channel: s for s in ChannelState.objects.select_for_update().filter(channel__in=channels).order_by("channel")}
    for channel in channels:
        _count(locked[channel], [o for o in counted if o.channel == channel], now)


def _count(state: ChannelState, outcomes: Iterable[Outcome], now: datetime) -> None:
    was_open, probe_at = state.opened_at is not None, state.next_probe_at
    for outcome in outcomes:
        if outcome.success:
            state.consecutive_failures, state.failing_events = 0, []
            state.opened_at = state.next_probe_at = None
        else:
            state.consecutive_failures += 1
            if outcome.event_id not in state.failing_events:
                state.failing_events = [*state.failing_events, outcome.event_id][-settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS:]
            if (
                state.opened_at is None
                and state.consecutive_failures >= settings.CERTCTL_CHANNEL_BREAKER_FAILURES
                and len(state.failing_events) >= settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS
            ):
                state.opened_at, state.next_probe_at = now, now + settings.CERTCTL_CHANNEL_BREAKER_PROBE
    state.save()
    failed_waiting = NotificationEvent.objects.filter(channel=state.channel, status=Status.FAILED, claim_token__isnull=True)
    if state.opened_at is not None:
        # Waiting costs no retries: due and soon-due retries move to the next probe.
        failed_waiting.filter(next_retry_at__lt=state.next_probe_at).update(next_retry_at=state.next_probe_at)
        if not was_open:
            log.warning(
                "%s circuit breaker opened after %d consecutive transient failures; its events wait, one is tried every %s",
                state.channel, state.consecutive_failures, settings.CERTCTL_CHANNEL_BREAKER_PROBE, extra={"channel": state.channel},
            )
    elif was_open:
        # The retries that waited for the breaker are due now, not at the probe they were moved to.
        if probe_at is not None:
            failed_waiting.filter(next_retry_at__lte=probe_at).update(next_retry_at=now)
        log.warning("%s circuit breaker closed: a delivery succeeded; waiting events flow again", state.channel,
                    extra={"channel": state.channel})


def probe_wait_for(channel: str, now: datetime) -> datetime:
    """When a failed probe's event is due again: at the channel's next probe."""
    state = ChannelState.objects.filter(channel=channel).values_list("next_probe_at", flat=True).first()
    return state or now + settings.CERTCTL_CHANNEL_BREAKER_PROBE


@transaction.atomic
def pause(channel: str, actor_name: str, now: datetime) -> bool:
    """Hold the channel's events. False when it was paused already."""
    ChannelState.objects.get_or_create(channel=channel)
    return bool(ChannelState.objects.filter(channel=channel, paused_at__isnull=True).update(paused_at=now, paused_by=actor_name))


@transaction.atomic
def resume(channel: str) -> bool:
    """Let the channel's events flow again. False when it was not paused."""
    return bool(ChannelState.objects.filter(channel=channel, paused_at__isnull=False).update(paused_at=None, paused_by=""))
