"""Reading destinations as every interface shows them: their non-secret fields, the names of the secret ones that
are set (never a value), and whether they can deliver."""
from datetime import datetime
from typing import Any, TypedDict

from django.conf import settings

from notifications.models import Destination
from notifications.notifiers import destination_problem, notifiers, refresh_stored_secrets, secrets_set
from notifications.queries.destination_health import destination_named
from notifications.sealing import SealingError


class DestinationRow(TypedDict):
    name: str
    channel: str
    enabled: bool
    description: str
    from_environment: bool
    config: dict[str, Any]
    secrets_set: list[str]
    configured: bool
    problem: str | None
    created_at: datetime
    updated_at: datetime


def visible_config(destination: Destination) -> dict[str, Any]:
    """`destination`'s non-secret fields: an environment destination's from the settings, a stored one's as kept."""
    if not destination.from_environment:
        return dict(destination.config)
    fields = notifiers()[destination.channel].fields
    return {field.name: getattr(settings, field.setting) for field in fields if not field.secret}


def destination_row(destination: Destination) -> DestinationRow:
    problem = destination_problem(destination)
    try:
        names = secrets_set(destination)
    except SealingError:
        names = []  # the problem says why they cannot be read
    return DestinationRow(
        name=destination.name, channel=destination.channel, enabled=destination.enabled,
        description=destination.description, from_environment=destination.from_environment,
        config=visible_config(destination), secrets_set=names, configured=problem is None, problem=problem,
        created_at=destination.created_at, updated_at=destination.updated_at,
    )


def live_destination(name: str) -> Destination:
    """The destination called `name` (not removed); DestinationNotFound otherwise."""
    # Whoever reads a destination may go on to show or send through it: its secrets are hidden from here on.
    refresh_stored_secrets()
    return destination_named(name)


def destination_list() -> list[DestinationRow]:
    """Every destination not removed, by name."""
    refresh_stored_secrets()
    Destination.objects.ensure_environment()
    return [destination_row(destination) for destination in Destination.objects.live().order_by("name")]


def get_destination(name: str) -> DestinationRow:
    return destination_row(live_destination(name))
