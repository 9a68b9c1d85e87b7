"""Pausing and resuming a destination (a maintenance window), audited as ConfigurationActions. A channel's pause is
its environment destination's (notifications.operations.channels)."""
import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from notifications.actors import Actor
from notifications.engine import breaker, dispatch
from notifications.models import ConfigurationAction, ConfigurationActionKind, ConfigurationTarget
from notifications.queries.destination_health import destination_named

log = logging.getLogger("notifications.services")


def pause_destination(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Hold a destination's events (a maintenance window; they spend no retries) until resumed; audited.
    False when it was paused already; errors.DestinationNotFound for an unknown or removed name."""
    destination, now = destination_named(name).name, now or timezone.now()
    with transaction.atomic():
        changed = breaker.pause(destination, actor.name, now)
        if changed:
            _audit(destination, ConfigurationActionKind.PAUSE, actor, now)
    if changed:
        log.warning(
            "destination %s paused by %s via %s: its events wait until it is resumed",
            destination, actor.name, actor.source, extra={"destination": destination},
        )
    return changed


def resume_destination(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Let a paused destination's events flow again at once; audited. False when it was not paused;
    errors.DestinationNotFound for an unknown or removed name."""
    destination, now = destination_named(name).name, now or timezone.now()
    with transaction.atomic():
        changed = breaker.resume(destination)
        if changed:
            _audit(destination, ConfigurationActionKind.RESUME, actor, now)
    if changed:
        log.warning(
            "destination %s resumed by %s via %s", destination, actor.name, actor.source,
            extra={"destination": destination},
        )
        dispatch.deliver_soon()
    return changed


def _audit(destination: str, action: str, actor: Actor, now: datetime) -> None:
    ConfigurationAction.objects.create(
        target_kind=ConfigurationTarget.DESTINATION, target=destination, action=action, actor=actor.name,
        source=actor.source, created_at=now,
    )
