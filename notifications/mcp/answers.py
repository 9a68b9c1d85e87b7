"""What the MCP tools answer, built on Django's sync thread: the reads of notifications.queries in the shared JSON
shapes (notifications.serializers), with every string from outside fenced (notifications.mcp.fencing). Events also
carry `retry_display` ("Retry 2/5"), as operators read it."""
from collections.abc import Mapping
from typing import Any

from notifications.actors import Actor
from notifications.mcp.fencing import fence, fenced, fenced_all
from notifications.models import NotificationEvent
from notifications.operations.channels import pause_channel, resume_channel
from notifications.operations.events import mark_read as mark_event_read
from notifications.operations.events import requeue_event
from notifications.queries import events
from notifications.queries.channels import channel_states
from notifications.queries.groups import failure_groups
from notifications.queries.summary import stats_summary
from notifications.serializers import (
    BulkAction,
    ChannelListSerializer,
    EventPageSerializer,
    FailureGroupListSerializer,
    NotificationEventSerializer,
    StatsSummarySerializer,
    event_with_history_data,
)

# The fields of each shape that hold text from outside.
EVENT_TEXT = ("id", "certificate_id", "recipient", "message", "last_error", "dedup_key")
ATTEMPT_TEXT = ("notification_id", "error")
ACTION_TEXT = ("actor",)
GROUP_TEXT = ("error", "sample_id")
CHANNEL_TEXT = ("paused_by",)


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
