"""Test shortcuts into the delivery engine: deliver one chosen event now, record a made-up result, send once."""
import asyncio
import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from notifications.engine import passes, recording, sender
from notifications.models import Destination, DestinationState, NotificationEvent
from notifications.notifiers import DeliveryResult
from notifications.notifiers.base import Notifier
from notifications.notifiers.http import new_http_client


def claim(event_id: str, now: datetime | None = None) -> NotificationEvent | None:
    """Lease this one event, as a pass would, if it is due at `now`."""
    now = now or timezone.now()
    token = secrets.token_hex(16)
    is_due = NotificationEvent.objects.due("pending", now) | NotificationEvent.objects.due("retry", now)
    lease = now + settings.CERTCTL_NOTIFICATION_LEASE
    if not is_due.filter(id=event_id).update(claimed_until=lease, claim_token=token):
        return None
    return NotificationEvent.objects.get(id=event_id)


def deliver_now(event_id: str, now: datetime | None = None) -> str | None:
    """Deliver this one event through the engine if it is due; its new status, or None when it was not due."""
    event = claim(event_id, now)
    return passes.deliver_batch([event], now=now)[0] if event else None


def record(event: NotificationEvent, result: DeliveryResult, now: datetime, duration_ms: int = 42) -> str | None:
    """Record `result` as the outcome of an attempt on a claimed event, started and finished at `now`."""
    return recording.record_results([sender.Delivery(event, result, now, duration_ms, now)])[0]


def send_once(notifier: Notifier, event: NotificationEvent) -> DeliveryResult:
    """One send through `notifier` with a client of its own, as the engine makes it."""

    async def send() -> DeliveryResult:
        async with new_http_client() as client:
            return await notifier.send(event, client)

    return asyncio.run(send())


class InstantClock:
    """Stands in for the engine's `time` module (monkeypatch passes.time): a sleep passes at once and moves
    time.monotonic() on, so that waits of seconds (database retries, lingering) run in no time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def destination_state(name: str = "Webhook", **fields: Any) -> DestinationState:
    """A destination's breaker/pause row, as the engine or an operator would leave it (the environment destinations
    exist first: a flushed test database has lost them)."""
    Destination.objects.ensure_environment()
    return DestinationState.objects.create(destination_id=name, **fields)


def state_of(name: str = "Webhook") -> DestinationState | None:
    """The destination's breaker/pause row, None while it has none."""
    return DestinationState.objects.filter(destination=name).first()
