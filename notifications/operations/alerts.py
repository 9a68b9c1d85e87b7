"""An alert: routed by the routes (notifications.queries.routing) to its destinations, one event for each, all
created in one transaction or none."""
import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from notifications.actors import Actor
from notifications.engine import dispatch
from notifications.errors import Unprocessable
from notifications.models import Channel, ConfigVersion, NotificationEvent
from notifications.notifiers.base import address_list_problem
from notifications.operations.events import EventDestination, lock_destinations, log_created, validate_event_input
from notifications.queries.routing import Alert, RouteTable, Routing, cached_route_table, evaluate

log = logging.getLogger("notifications.services")


@dataclass(frozen=True)
class AlertResult:
    """The events of an alert with whether each was created now (False: its dedup key was known for that
    destination), and the routes that chose the destinations."""

    events: list[tuple[NotificationEvent, bool]]
    routes: list[str]


def default_recipient(destination: EventDestination) -> str:
    """The recipient of an alert that names none: an Email destination's `recipients` (CERTCTL_SMTP_RECIPIENTS for
    the environment one); any other destination's name, which the Webhook, PagerDuty and OpsGenie payloads carry as
    the target, and which Slack and Teams ignore (Slack posts to its configured channel)."""
    if destination.channel != Channel.EMAIL:
        return destination.name
    where = "CERTCTL_SMTP_RECIPIENTS" if destination.target is None else "its recipients"
    if not destination.recipients:
        raise Unprocessable({
            "recipient": f"the alert goes to the Email destination {destination.name!r}, which has no recipients: "
            f"give the e-mail address, or set {where}"
        })
    problem = address_list_problem(destination.recipients)
    if problem:
        raise Unprocessable({"recipient": f"{where} of the Email destination {destination.name!r}: {problem}"})
    return destination.recipients


class _RoutesChanged(Exception):
    """The routes changed since this process read them: the alert is routed again by the stored ones."""


def route_alert(
    *, type: str, message: str, certificate_id: str | None = None, severity: str | None = None,
    labels: dict[str, str] | None = None, recipient: str | None = None, dedup_key: str | None = None,
    table: RouteTable | None = None,
) -> Routing:
    """Where the alert would go (by `table`, or the current routes), after the checks a create makes; nothing is
    written (routes/test)."""
    validate_event_input(
        # The routes choose the destinations (so no channel); a recipient left out is chosen per destination.
        type=type, channel=None, destination="routed", recipient=recipient or "routed", message=message,
        certificate_id=certificate_id or None, severity=severity or None, dedup_key=dedup_key or None,
        labels=labels or {},
    )
    alert = Alert(type=type, severity=severity or None, certificate_id=certificate_id or None, labels=labels or {})
    return evaluate(alert, table)


def create_alert(
    *, type: str, message: str, certificate_id: str | None = None, severity: str | None = None,
    labels: dict[str, str] | None = None, recipient: str | None = None, dedup_key: str | None = None,
    actor: Actor,
) -> AlertResult:
    """One pending event per destination the routes choose, in one transaction: a destination that cannot take
    its event (disabled or removed since the routes were read) refuses the whole alert. With a `dedup_key` known
    for a destination, that destination's existing event is returned (created=False).

    The alert is routed by this process's routes as last read; the statement that locks the destinations reads
    the stored configuration version too, and routes changed meanwhile send the alert through the routes again."""
    request: dict[str, Any] = dict(
        type=type, message=message, certificate_id=certificate_id, severity=severity, labels=labels,
        recipient=recipient, dedup_key=dedup_key,
    )
    routing = route_alert(**request, table=cached_route_table())
    fields = dict(
        type=type, message=message, certificate_id=certificate_id or None, severity=severity or None,
        labels=labels or {}, dedup_key=dedup_key or None,
    )
    for last in (False, False, True):
        try:
            events = _create_events(routing, recipient, fields, check_routes=not last)
            break
        except _RoutesChanged:
            routing = route_alert(**request)
        except IntegrityError:
            if not dedup_key or last:
                raise
            # Lost a race with an alert of the same dedup key: its events are committed now, and taken as ours.
    log.info(
        "alert %s from %s via %s routed by %s to %s", type, actor.name, actor.source, ", ".join(routing.routes),
        ", ".join(name for name, _ in routing.destinations),
        extra={"routes": routing.routes, "event_ids": [event.id for event, _ in events]},
    )
    return AlertResult(events=events, routes=routing.routes)


def _create_events(
    routing: Routing, recipient: str | None, fields: dict[str, Any], check_routes: bool
) -> list[tuple[NotificationEvent, bool]]:
    """The alert's events, in the routing's order, in one transaction that share-locks their destinations: one
    statement for the destinations (and the configuration version), one for the known dedup keys (if any), one
    insert. Raises _RoutesChanged (with `check_routes`) when the routes are not those of the stored version."""
    names = [name for name, _ in routing.destinations]
    with transaction.atomic():
        locked = lock_destinations(names)
        if check_routes:
            version = ConfigVersion.objects.current() if locked.version is None else locked.version
            if version != routing.version:
                raise _RoutesChanged
        destinations = {name: locked.get(name) for name in names}
        known: dict[str, NotificationEvent] = {}
        if fields["dedup_key"]:
            known = {
                event.destination: event
                for event in NotificationEvent.objects.filter(destination__in=names, dedup_key=fields["dedup_key"])
            }
        events = [
            (known[name], False) if name in known else (NotificationEvent(
                **fields, channel=destinations[name].channel, target_id=destinations[name].target,
                recipient=(recipient or default_recipient(destinations[name])).strip(),
            ), True)
            for name in names
        ]
        NotificationEvent.objects.bulk_create([event for event, created in events if created])
        if any(created for _, created in events):
            dispatch.deliver_soon()
    for event, created in events:
        if created:
            log_created(event, event.destination)
    return events
