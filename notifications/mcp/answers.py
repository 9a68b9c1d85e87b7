"""What the MCP tools answer, built on Django's sync thread: the shared JSON shapes (notifications.serializers), with
every string from outside fenced (notifications.mcp.fencing)."""
from typing import Any

from notifications.actors import Actor
from notifications.mcp.fencing import fence, fenced, fenced_all
from notifications.models import NotificationAttempt, NotificationEvent, OperatorAction
from notifications.operations.channels import pause_channel, resume_channel
from notifications.operations.events import mark_read as mark_event_read
from notifications.operations.events import mark_read_events, requeue_event, requeue_events
from notifications.queries.channels import channel_states
from notifications.queries.events import (
    LIST_ORDER,
    event_with_history,
    filter_events,
    preview_mark_read,
    preview_requeue,
    retry_display,
)
from notifications.queries.groups import failure_groups
from notifications.queries.summary import stats_summary
from notifications.serializers import (
    BulkReadResultSerializer,
    BulkRequeueResultSerializer,
    ChannelSerializer,
    FailureGroupSerializer,
    NotificationAttemptSerializer,
    NotificationEventSerializer,
    OperatorActionSerializer,
    ReadPreviewSerializer,
    RequeuePreviewSerializer,
    StatsSummarySerializer,
)

# The fields of each shape that hold text from outside.
EVENT_TEXT = ("id", "certificate_id", "recipient", "message", "last_error", "dedup_key")
GROUP_TEXT = ("error", "sample_id")


def event_data(event: NotificationEvent, nonce: str) -> dict[str, Any]:
    return {**fenced(NotificationEventSerializer(event).data, EVENT_TEXT, nonce), "retry_display": retry_display(event)}


def attempt_data(attempt: NotificationAttempt, nonce: str) -> dict[str, Any]:
    data = dict(NotificationAttemptSerializer(attempt).data)
    del data["notification_id"]  # the event it belongs to answers with it
    data["error"] = fence(attempt.error, nonce) if attempt.error else None
    return data


def action_data(action: OperatorAction, nonce: str) -> dict[str, Any]:
    return fenced(OperatorActionSerializer(action).data, ("actor",), nonce)


def list_page(page: int, per_page: int, filters: dict[str, str], nonce: str) -> dict[str, Any]:
    events = filter_events(NotificationEvent.objects.all(), filters).order_by(*LIST_ORDER)
    start = (page - 1) * per_page
    return {
        "data": [event_data(event, nonce) for event in events[start : start + per_page]],
        "total": events.count(),
        "page": page,
        "per_page": per_page,
    }


def event_with_its_history(event_id: str, nonce: str) -> dict[str, Any]:
    history = event_with_history(event_id)
    data = event_data(history.event, nonce)
    data["attempts"] = [attempt_data(a, nonce) for a in history.attempts]
    data["operator_actions"] = [action_data(a, nonce) for a in history.operator_actions]
    return data


def mark_read(actor: Actor, event_id: str, nonce: str) -> dict[str, Any]:
    event = mark_event_read(event_id, actor)
    return {"status": "marked_as_read", "id": fence(event.id, nonce), "read_at": NotificationEventSerializer(event).data["read_at"]}


def mark_read_many(actor: Actor, ids: list[str] | None, filters: dict[str, str] | None, dry_run: bool, nonce: str) -> dict[str, Any]:
    if dry_run:
        preview = ReadPreviewSerializer(preview_mark_read(ids=ids, filters=filters)).data
        return {**preview, "sample": fenced_all(preview["sample"], nonce)}
    return dict(BulkReadResultSerializer(mark_read_events(actor, ids=ids, filters=filters)).data)


def requeue(actor: Actor, event_id: str, nonce: str) -> dict[str, Any]:
    event = requeue_event(event_id, actor)
    return {"status": "requeued", "id": fence(event.id, nonce)}


def requeue_many(actor: Actor, ids: list[str] | None, filters: dict[str, str] | None, dry_run: bool, nonce: str) -> dict[str, Any]:
    if dry_run:
        preview = RequeuePreviewSerializer(preview_requeue(ids=ids, filters=filters)).data
        return {**preview, "sample": fenced_all(preview["sample"], nonce)}
    return dict(BulkRequeueResultSerializer(requeue_events(actor, ids=ids, filters=filters)).data)


def channels(nonce: str) -> dict[str, Any]:
    listing = [fenced(channel, ("paused_by",), nonce) for channel in ChannelSerializer(channel_states(), many=True).data]
    return {"data": listing, "total": len(listing)}


def pause_or_resume(actor: Actor, channel: str, pause: bool, nonce: str) -> dict[str, Any]:
    change = pause_channel if pause else resume_channel
    changed = change(channel, actor)
    state = next(c for c in channels(nonce)["data"] if c["name"] == channel)
    return {"changed": changed, **state}


def groups(filters: dict[str, str], nonce: str) -> dict[str, Any]:
    listing = [fenced(group, GROUP_TEXT, nonce) for group in FailureGroupSerializer(failure_groups(filters), many=True).data]
    return {"data": listing, "total": len(listing)}


def summary() -> dict[str, Any]:
    return dict(StatsSummarySerializer(stats_summary()).data)
