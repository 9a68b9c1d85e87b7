"""An alert: routed by the routes (notifications.queries.routing) to its destinations, one event for each, all
created in one transaction or none."""
import contextlib
import logging
from dataclasses import dataclass

from django.db import transaction

from notifications.actors import Actor
from notifications.errors import Unprocessable
from notifications.models import Channel, NotificationEvent
from notifications.operations.events import create_event, validate_event_input
from notifications.queries.routing import Alert, Routing, evaluate

log = logging.getLogger("notifications.services")


@dataclass(frozen=True)
class AlertResult:
    """The events of an alert with whether each was created now (False: its dedup key was known for that
    destination), and the routes that chose the destinations."""

    events: list[tuple[NotificationEvent, bool]]
    routes: list[str]


def default_recipient(destination: str, channel: str) -> str:
    """The recipient of an alert that names none: the destination's name, which the Webhook, PagerDuty and OpsGenie
    payloads carry as the target, and which Slack and Teams ignore (Slack posts to its configured channel). Email
    has no default: its recipient is the address the message goes to."""
    if channel == Channel.EMAIL:
        raise Unprocessable({
            "recipient": f"the alert goes to the Email destination {destination!r}, which needs a recipient: "
            "give the e-mail address"
        })
    return destination


def route_alert(
    *, type: str, message: str, certificate_id: str | None = None, severity: str | None = None,
    labels: dict[str, str] | None = None, recipient: str | None = None, dedup_key: str | None = None,
) -> Routing:
    """Where the alert would go, after the checks a create makes; nothing is written (routes/test)."""
    validate_event_input(
        # The routes choose the destinations (so no channel); a recipient left out is chosen per destination.
        type=type, channel=None, destination="routed", recipient=recipient or "routed", message=message,
        certificate_id=certificate_id or None, severity=severity or None, dedup_key=dedup_key or None,
        labels=labels or {},
    )
    return evaluate(Alert(type=type, severity=severity or None, certificate_id=certificate_id or None,
                          labels=labels or {}))


def create_alert(
    *, type: str, message: str, certificate_id: str | None = None, severity: str | None = None,
    labels: dict[str, str] | None = None, recipient: str | None = None, dedup_key: str | None = None,
    actor: Actor,
) -> AlertResult:
    """One pending event per destination the routes choose, in one transaction: a destination that cannot take
    its event (disabled or removed since the routes were read) refuses the whole alert. With a `dedup_key` known
    for a destination, that destination's existing event is returned (created=False)."""
    routing = route_alert(
        type=type, message=message, certificate_id=certificate_id, severity=severity, labels=labels,
        recipient=recipient, dedup_key=dedup_key,
    )
    events: list[tuple[NotificationEvent, bool]] = []
    # One destination: create_event's own transaction is the alert's (no savepoint, two round trips fewer).
    with transaction.atomic() if len(routing.destinations) > 1 else contextlib.nullcontext():
        for destination, channel in routing.destinations:
            events.append(create_event(
                type=type, destination=destination, recipient=recipient or default_recipient(destination, channel),
                message=message, certificate_id=certificate_id, severity=severity, dedup_key=dedup_key,
                labels=labels,
            ))
    log.info(
        "alert %s from %s via %s routed by %s to %s", type, actor.name, actor.source, ", ".join(routing.routes),
        ", ".join(name for name, _ in routing.destinations),
        extra={"routes": routing.routes, "event_ids": [event.id for event, _ in events]},
    )
    return AlertResult(events=events, routes=routing.routes)
