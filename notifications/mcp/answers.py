"""What the MCP tools answer, built on Django's sync thread: the reads of notifications.queries in the shared JSON
shapes (notifications.serializers), with every string from outside fenced (notifications.mcp.fencing). Events also
carry `retry_display` ("Retry 2/5"), as operators read it."""
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rest_framework import serializers

from notifications.actors import Actor
from notifications.mcp.fencing import fence, fenced, fenced_all
from notifications.models import DestinationCondition, NotificationEvent
from notifications.operations.alerts import route_alert
from notifications.operations.channels import pause_channel, resume_channel
from notifications.operations.events import mark_read as mark_event_read
from notifications.operations.events import requeue_event
from notifications.queries import events
from notifications.queries.channels import channel_states
from notifications.queries.destination_health import destination_states
from notifications.queries.destinations import destination_list
from notifications.queries.groups import failure_groups
from notifications.queries.routing import routes_in_order
from notifications.queries.summary import stats_summary
from notifications.serializers import (
    BulkAction,
    ChannelListSerializer,
    DestinationListSerializer,
    EventPageSerializer,
    FailureGroupListSerializer,
    NotificationEventSerializer,
    RouteListSerializer,
    RoutingSerializer,
    StatsSummarySerializer,
    event_with_history_data,
)

# The fields of each shape that hold text from outside.
EVENT_TEXT = ("id", "certificate_id", "recipient", "message", "last_error", "dedup_key")
ATTEMPT_TEXT = ("notification_id", "error")
ACTION_TEXT = ("actor",)
GROUP_TEXT = ("error", "sample_id")
CHANNEL_TEXT = ("paused_by",)
DESTINATION_TEXT = ("name", "description", "problem", "paused_by", "last_error")
ROUTE_TEXT = ("name",)
# routes/test asks no message of the MCP client: the checks an alert's message passes are the same for any.
ROUTE_TEST_MESSAGE = "routing test"


def fenced_items(envelope: Mapping[str, Any], names: tuple[str, ...], nonce: str) -> dict[str, Any]:
    """A `{"data": [...], "total": N, …}` answer with the fields `names` of each item fenced."""
    return {**envelope, "data": [fenced(item, names, nonce) for item in envelope["data"]]}


def event_data(data: Mapping[str, Any], event: NotificationEvent, nonce: str) -> dict[str, Any]:
    """An event's shape (`data`, from NotificationEventSerializer) fenced, with its retry display."""
    return {**fenced(data, EVENT_TEXT, nonce), "retry_display": events.retry_display(event)}


def list_page(page: int, per_page: int, filters: dict[str, str], nonce: str) -> dict[str, Any]:
    listed = events.list_page(filters, page, per_page)
    data = dict(EventPageSerializer(listed).data)
    data["data"] = [event_data(shape, event, nonce) for shape, event in zip(data["data"], listed.rows, strict=True)]
    return data


def event_with_its_history(event_id: str, nonce: str) -> dict[str, Any]:
    history = events.event_with_history(event_id)
    data = event_data(event_with_history_data(history), history.event, nonce)
    data["attempts"] = [fenced(attempt, ATTEMPT_TEXT, nonce) for attempt in data["attempts"]]
    data["operator_actions"] = [fenced(action, ACTION_TEXT, nonce) for action in data["operator_actions"]]
    return data


def mark_read(actor: Actor, event_id: str, nonce: str) -> dict[str, Any]:
    event = mark_event_read(event_id, actor)
    read_at = NotificationEventSerializer(event).data["read_at"]
    return {"status": "marked_as_read", "id": fence(event.id, nonce), "read_at": read_at}


def requeue(actor: Actor, event_id: str, nonce: str) -> dict[str, Any]:
    event = requeue_event(event_id, actor)
    return {"status": "requeued", "id": fence(event.id, nonce)}


def bulk(
    action: BulkAction, actor: Actor, ids: list[str] | None, filters: dict[str, str] | None, dry_run: bool, nonce: str
) -> dict[str, Any]:
    answer = action.run(actor, ids=ids, filters=filters, dry_run=dry_run)
    if dry_run:
        answer["sample"] = fenced_all(answer["sample"], nonce)
    return answer


def channels(nonce: str) -> dict[str, Any]:
    states = channel_states()
    return fenced_items(ChannelListSerializer({"data": states, "total": len(states)}).data, CHANNEL_TEXT, nonce)


def pause_or_resume(actor: Actor, channel: str, pause: bool, nonce: str) -> dict[str, Any]:
    change = pause_channel if pause else resume_channel
    changed = change(channel, actor)
    state = next(c for c in channels(nonce)["data"] if c["name"] == channel)
    return {"changed": changed, **state}


def groups(filters: dict[str, str], nonce: str) -> dict[str, Any]:
    found = failure_groups(filters)
    return fenced_items(FailureGroupListSerializer({"data": found, "total": len(found)}).data, GROUP_TEXT, nonce)


def summary() -> dict[str, Any]:
    return dict(StatsSummarySerializer(stats_summary()).data)


def _time(value: datetime | None) -> str | None:
    return serializers.DateTimeField().to_representation(value) if value else None


def destinations(nonce: str) -> dict[str, Any]:
    """Every destination with its state; its secret fields only by name (secrets_set), never a value."""
    rows = destination_list()
    states = {state["name"]: state for state in destination_states()}
    answer = DestinationListSerializer({"data": rows, "total": len(rows)}).data
    items = []
    for item in answer["data"]:
        state = states.get(item["name"])
        # None: created since the states were read; it has no pause, breaker or attempt yet.
        health = {
            "state": state["state"], "since": _time(state["since"]), "paused_by": state["paused_by"],
            "consecutive_failures": state["consecutive_failures"], "next_probe_at": _time(state["next_probe_at"]),
            "last_success_at": _time(state["last_success_at"]), "last_failure_at": _time(state["last_failure_at"]),
            "last_error": state["last_error"],
        } if state else {"state": DestinationCondition.CLOSED}
        config = {
            name: fence(value, nonce) if isinstance(value, str) else value for name, value in item["config"].items()
        }
        items.append(fenced({**item, **health, "config": config}, DESTINATION_TEXT, nonce))
    return {**answer, "data": items}


def routes(nonce: str) -> dict[str, Any]:
    """Every route in evaluation order, the default one last."""
    ordered = routes_in_order()
    answer = fenced_items(RouteListSerializer({"data": ordered, "total": len(ordered)}).data, ROUTE_TEXT, nonce)
    for item in answer["data"]:
        item["destinations"] = fenced_all(item["destinations"], nonce)
        match = dict(item["match"])
        if "certificate_ids" in match:
            match["certificate_ids"] = fenced_all(match["certificate_ids"], nonce)
        if "labels" in match:
            match["labels"] = {key: fence(value, nonce) for key, value in match["labels"].items()}
        item["match"] = match
    return answer


def route_test(
    type: str, severity: str | None, certificate_id: str | None, labels: dict[str, str], nonce: str
) -> dict[str, Any]:
    """Where an alert would go (its destinations and the routes that matched), creating nothing."""
    routing = route_alert(
        type=type, message=ROUTE_TEST_MESSAGE, severity=severity, certificate_id=certificate_id, labels=labels
    )
    answer = dict(RoutingSerializer(routing).data)
    answer["destinations"] = [fenced(item, ("name",), nonce) for item in answer["destinations"]]
    answer["routes"] = fenced_all(answer["routes"], nonce)
    return answer
