"""Pausing and resuming a channel (a maintenance window), audited as ChannelActions."""
import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from notifications.actors import Actor
from notifications.engine import breaker, dispatch
from notifications.errors import DestinationConflict
from notifications.models import ChannelAction, ChannelActionKind
from notifications.queries.channels import channel_named
from notifications.queries.destinations import live_destination

log = logging.getLogger("notifications.services")


def pause_channel(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Hold a channel's events (a maintenance window) until resumed; audited. False when it was paused already."""
    channel, now = channel_named(name), now or timezone.now()
    with transaction.atomic():
        changed = breaker.pause(channel, actor.name, now)
        if changed:
            ChannelAction.objects.create(
                channel=channel, action=ChannelActionKind.PAUSE, actor=actor.name, source=actor.source, created_at=now
            )
    if changed:
        log.warning(
            "channel %s paused by %s via %s: its events wait until it is resumed", channel, actor.name, actor.source,
            extra={"channel": channel},
        )
    return changed


def resume_channel(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Let a paused channel's events flow again; audited. False when it was not paused."""
    channel, now = channel_named(name), now or timezone.now()
    with transaction.atomic():
        changed = breaker.resume(channel)
        if changed:
            ChannelAction.objects.create(
                channel=channel, action=ChannelActionKind.RESUME, actor=actor.name, source=actor.source, created_at=now
            )
    if changed:
        log.warning("channel %s resumed by %s via %s", channel, actor.name, actor.source, extra={"channel": channel})
        dispatch.deliver_soon()
    return changed


def _breaker_name(name: str) -> str:
    """The breaker row of destination `name`: the breaker keeps one per channel, so only an environment destination
    (named after its channel) has one."""
    destination = live_destination(name)
    if not destination.from_environment:
        raise DestinationConflict(
            f"destination {name!r} cannot be paused: the breaker holds environment destinations only"
        )
    return destination.name


def pause_destination(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Hold a destination's events until resumed. False when it was paused already."""
    return pause_channel(_breaker_name(name), actor, now)


def resume_destination(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Let a paused destination's events flow again. False when it was not paused."""
    return resume_channel(_breaker_name(name), actor, now)
