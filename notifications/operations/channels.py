"""Pausing and resuming a channel: its environment destination, named after it (notifications.operations.pausing)."""
from datetime import datetime

from notifications.actors import Actor
from notifications.operations.pausing import pause_destination, resume_destination
from notifications.queries.channels import channel_named


def pause_channel(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Hold a channel's events (a maintenance window) until resumed; audited. False when it was paused already."""
    return pause_destination(channel_named(name), actor, now)


def resume_channel(name: str, actor: Actor, now: datetime | None = None) -> bool:
    """Let a paused channel's events flow again; audited. False when it was not paused."""
    return resume_destination(channel_named(name), actor, now)
