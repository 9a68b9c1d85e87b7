"""The channels, each as its environment destination (named after it): whether it is configured and its circuit
breaker or pause state. Every destination, stored ones too: notifications.queries.destination_health."""
from datetime import datetime
from typing import TypedDict

from notifications.errors import UnknownChannel
from notifications.models import Channel, DestinationState
from notifications.notifiers import channel_status


def channel_named(name: str) -> str:
    """The channel an operator typed, in any letter case; UnknownChannel when there is none."""
    canonical = {value.lower(): value for value in Channel.values}.get(str(name).lower())
    if canonical is None:
        raise UnknownChannel(name)
    return canonical


class ChannelListing(TypedDict):
    name: str
    configured: bool
    state: str
    since: datetime | None
    paused_by: str | None
    consecutive_failures: int
    next_probe_at: datetime | None


def channel_states() -> list[ChannelListing]:
    """Every channel with its environment destination's breaker/pause state, for the API, UI, CLI and MCP."""
    rows = {state.destination_id: state for state in DestinationState.objects.filter(destination__in=Channel.values)}
    configured = channel_status()
    listing = []
    for name in Channel.values:
        state = rows.get(name) or DestinationState()
        listing.append(ChannelListing(
            name=name,
            configured=configured[name][0],
            state=state.state,
            since=state.paused_at or state.opened_at,
            paused_by=state.paused_by or None,
            consecutive_failures=state.consecutive_failures,
            next_probe_at=state.next_probe_at if state.opened_at and not state.paused_at else None,
        ))
    return listing
