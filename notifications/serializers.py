"""The JSON shapes shared by the interfaces, with certctl's field names: the REST API answers with them, the CLI's
--json prints them, and the MCP tools build on them (adding their fences). Requests are the API's own
(notifications.api.serializers)."""
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from django.db.models import TextChoices
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from notifications.actors import Actor
from notifications.models import (
    AttemptOutcome,
    CauseKind,
    Channel,
    DestinationCondition,
    EventType,
    ListedStatus,
    NotificationAttempt,
    NotificationEvent,
    OperatorAction,
    Route,
    Severity,
    Status,
)
from notifications.operations.alerts import AlertResult
from notifications.operations.destinations import TestOutcome
from notifications.operations.events import BulkReadResult, BulkRequeueResult, mark_read_events, requeue_events
from notifications.queries.channels import ChannelListing
from notifications.queries.destinations import DestinationRow
from notifications.queries.events import (
    MAX_PER_PAGE,
    SAMPLE_SIZE,
    BulkPreview,
    EventHistory,
    preview_mark_read,
    preview_requeue,
)
from notifications.queries.groups import FailureGroup
from notifications.queries.routing import MAX_CERTIFICATE_GLOBS, MAX_GLOB_LENGTH, Routing, route_destinations


def choice_field(choices: type[TextChoices], name: str, **kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=choices.choices,
        error_messages={"invalid_choice": f'unknown {name} "{{input}}"; expected one of {", ".join(choices.values)}'},
        **kwargs,
    )


class NotificationEventSerializer(serializers.ModelSerializer[NotificationEvent]):
    type = choice_field(EventType, "type")
    channel = choice_field(Channel, "channel")
    severity = choice_field(Severity, "severity", allow_null=True)
    status = choice_field(
        ListedStatus, "status", source="listed_status", read_only=True,
        help_text='As certctl shows it: "read" once an operator acknowledged the event (read_at is set), '
        "else its delivery state. Acknowledging never stops a delivery: see delivery_status.",
    )
    delivery_status = choice_field(
        Status, "delivery_status", source="status", read_only=True,
        help_text="Delivery state, whether read or not: pending, sent, failed or dead.",
    )
    destination = serializers.CharField(
        read_only=True, help_text="The destination's name; a channel's own destination is named after the channel."
    )
    labels = serializers.DictField(
        child=serializers.CharField(), read_only=True,
        help_text='String labels routes match on, e.g. {"team": "payments"}.',
    )

    class Meta:
        model = NotificationEvent
        fields = [
            "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
            "retry_count", "next_retry_at", "last_error", "sent_at", "created_at", "updated_at", "read_at",
            "dedup_key", "destination", "labels",
        ]
        read_only_fields = fields


class NotificationAttemptSerializer(serializers.ModelSerializer[NotificationAttempt]):
    notification_id = serializers.CharField(source="event_id")
    outcome = choice_field(AttemptOutcome, "outcome")
    resulting_status = choice_field(
        Status, "status", allow_null=True,
        help_text="The event's status after this attempt; null when a requeue or lease expiry overtook it.",
    )

    class Meta:
        model = NotificationAttempt
        fields = [
            "notification_id", "number", "started_at", "duration_ms", "outcome", "error", "http_status",
            "resulting_status",
        ]
        read_only_fields = fields


class OperatorActionSerializer(serializers.ModelSerializer[OperatorAction]):
    class Meta:
        model = OperatorAction
        fields = ["created_at", "action", "actor", "source", "bulk", "previous_status"]


def envelope(
    name: str, items: serializers.BaseSerializer[Any], **fields: serializers.Field[Any, Any, Any, Any]
) -> type[serializers.Serializer[Any]]:
    """The serializer class `name` of certctl's list answers, `{"data": [items…], **fields}`. Built, not declared:
    a field named `data` in a class body would stand for Serializer.data to a type checker."""
    namespace = {"data": items, **fields, "__module__": __name__}
    built = serializers.SerializerMetaclass(name, (serializers.Serializer,), namespace)
    return cast(type[serializers.Serializer[Any]], built)


# A page of the notification list (queries.events.list_page).
EventPageSerializer = envelope(
    "EventPageSerializer", NotificationEventSerializer(source="rows", many=True),
    total=serializers.IntegerField(min_value=0, help_text="Every match, not just this page."),
    page=serializers.IntegerField(min_value=1),
    per_page=serializers.IntegerField(min_value=1, max_value=MAX_PER_PAGE),
)


def event_with_history_data(history: EventHistory) -> dict[str, Any]:
    """An event with every delivery attempt (oldest first) and every operator action
    (queries.events.event_with_history): `manage.py notifications show --json` and MCP's certctl_get_notification."""
    return {
        **NotificationEventSerializer(history.event).data,
        "attempts": NotificationAttemptSerializer(history.attempts, many=True).data,
        "operator_actions": OperatorActionSerializer(history.operator_actions, many=True).data,
    }


class BulkPreviewSerializer(serializers.Serializer[BulkPreview]):
    """A bulk action's dry run (queries.events.BulkPreview), named for its action by the subclasses."""

    skipped = serializers.IntegerField(min_value=0, help_text="Selected events that would be left alone.")
    sample = serializers.ListField(
        child=serializers.CharField(), max_length=SAMPLE_SIZE,
        help_text=f"Up to {SAMPLE_SIZE} ids of events that would change, newest first.",
    )


class RequeuePreviewSerializer(BulkPreviewSerializer):
    would_requeue = serializers.IntegerField(
        source="would_change", min_value=0, help_text="Events that would move back to pending."
    )


class ReadPreviewSerializer(BulkPreviewSerializer):
    would_mark_read = serializers.IntegerField(
        source="would_change", min_value=0, help_text="Unread events that would be marked read."
    )


class FailureGroupSerializer(serializers.Serializer[FailureGroup]):
    channel = choice_field(Channel, "channel")
    kind = choice_field(
        CauseKind, "kind",
        help_text="permanent: the final failure was a refusal that retrying cannot fix (HTTP 4xx, a bad "
        "configuration); transient: the retries ran out on failures that may pass (HTTP 5xx, timeouts).",
    )
    error = serializers.CharField(
        help_text="The cause: the last error (its first 2,000 characters, HTML reduced to its text) with ids, numbers, "
        "hex strings, UUIDs and timestamps replaced by <id>, <n>, <hex>, <uuid> and <time>, so that one cause is one "
        "group; a three-digit HTTP status stays (HTTP 503). At most 240 characters; a cut one ends with …. Select the "
        "group's events with the filters channel, cause_kind (= kind) and cause (= error)."
    )
    count = serializers.IntegerField(min_value=1)
    first_at = serializers.DateTimeField(help_text="The earliest latest-attempt time in the group.")
    last_at = serializers.DateTimeField(help_text="The latest attempt in the group.")
    sample_id = serializers.CharField(help_text="The event of the group that failed last.")


FailureGroupListSerializer = envelope(
    "FailureGroupListSerializer", FailureGroupSerializer(many=True),
    total=serializers.IntegerField(min_value=0, help_text="Number of groups."),
)


class BulkRequeueResultSerializer(serializers.Serializer[BulkRequeueResult]):
    requeued = serializers.IntegerField(min_value=0, help_text="Events moved back to pending.")
    skipped = serializers.IntegerField(
        min_value=0, help_text="Selected events left alone: unknown ids, not failed/dead, or being delivered right now."
    )


class BulkReadResultSerializer(serializers.Serializer[BulkReadResult]):
    marked_read = serializers.IntegerField(
        min_value=0, help_text="Events acknowledged now (dead ones are thereby dismissed from the dead-letter queue)."
    )
    skipped = serializers.IntegerField(
        min_value=0, help_text="Selected events left alone: unknown ids or already read."
    )


@dataclass(frozen=True)
class BulkAction:
    """A bulk action as the API, the CLI and MCP offer it: the change (notifications.operations) and its dry run
    (notifications.queries), each with the shape of its answer."""

    change: Callable[..., Any]
    answer: type[serializers.Serializer[Any]]
    preview: Callable[..., BulkPreview]
    preview_answer: type[BulkPreviewSerializer]

    def run(
        self, actor: Actor, *, ids: Iterable[str] | None = None, filters: Mapping[str, Any] | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """The answer to the action on the events `ids` or `filters` select; with `dry_run`, what it would do."""
        if dry_run:
            return dict(self.preview_answer(self.preview(ids=ids, filters=filters)).data)
        return dict(self.answer(self.change(actor, ids=ids, filters=filters)).data)


BULK_REQUEUE = BulkAction(requeue_events, BulkRequeueResultSerializer, preview_requeue, RequeuePreviewSerializer)
BULK_MARK_READ = BulkAction(mark_read_events, BulkReadResultSerializer, preview_mark_read, ReadPreviewSerializer)


class MarkedReadSerializer(serializers.Serializer[dict[str, str]]):
    status = serializers.ChoiceField(choices=["marked_as_read"])


class RequeuedSerializer(serializers.Serializer[dict[str, str]]):
    status = serializers.ChoiceField(choices=["requeued"])


class StatsSummarySerializer(serializers.Serializer[dict[str, Any]]):
    notifications_total = serializers.IntegerField(min_value=0)
    notifications_pending = serializers.IntegerField(min_value=0)
    notifications_sent = serializers.IntegerField(min_value=0)
    notifications_failed = serializers.IntegerField(min_value=0)
    notifications_dead = serializers.IntegerField(min_value=0, help_text="Every dead event, dismissed or not.")
    notifications_dead_unacknowledged = serializers.IntegerField(
        min_value=0, help_text="Dead events no operator has dismissed (marked read) yet: the Dead letter tab's size."
    )
    notifications_unread = serializers.IntegerField(min_value=0)
    oldest_due_retry_at = serializers.DateTimeField(
        allow_null=True, help_text="The earliest retry that is due but not yet taken; null when none is due."
    )
    oldest_due_retry_age_seconds = serializers.IntegerField(allow_null=True, min_value=0)
    completed_at = serializers.DateTimeField(help_text="When these counts were taken.")


class ChannelSerializer(serializers.Serializer[ChannelListing]):
    name = choice_field(Channel, "channel")
    configured = serializers.BooleanField(
        help_text="False when a required setting is missing: its events are dead-lettered."
    )
    state = serializers.ChoiceField(
        choices=DestinationCondition.choices,
        help_text="closed: deliveries flow; open: the circuit breaker holds the channel's events after consecutive "
        "transient failures and tries one per probe interval; paused: an operator holds them.",
    )
    since = serializers.DateTimeField(
        allow_null=True, help_text="When the channel was opened or paused; null when closed."
    )
    paused_by = serializers.CharField(allow_null=True, help_text="Who paused it; null unless paused.")
    consecutive_failures = serializers.IntegerField(min_value=0)
    next_probe_at = serializers.DateTimeField(allow_null=True, help_text="When an open channel's next probe is tried.")


ChannelListSerializer = envelope(
    "ChannelListSerializer", ChannelSerializer(many=True), total=serializers.IntegerField(min_value=0)
)


class DestinationSerializer(serializers.Serializer[DestinationRow]):
    """A destination as every interface shows it: never a secret value, only the names of the secret fields set."""

    name = serializers.CharField()
    channel = choice_field(Channel, "channel")
    enabled = serializers.BooleanField(help_text="A disabled destination takes no new events; its waiting ones wait.")
    description = serializers.CharField(allow_blank=True)
    from_environment = serializers.BooleanField(
        help_text="Defined by the channel's CERTCTL_ variables (named after the channel): read-only here."
    )
    config = serializers.DictField(
        child=serializers.JSONField(),
        help_text="The channel's fields that are not secret (docs/channels.md lists each channel's fields).",
    )
    secrets_set = serializers.ListField(
        child=serializers.CharField(),
        help_text="The secret fields that have a value. Secret values are write-only: never answered.",
    )
    configured = serializers.BooleanField(help_text="False when the destination cannot deliver; `problem` says why.")
    problem = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


DestinationListSerializer = envelope(
    "DestinationListSerializer", DestinationSerializer(many=True), total=serializers.IntegerField(min_value=0)
)


class TestOutcomeSerializer(serializers.Serializer[TestOutcome]):
    outcome = serializers.ChoiceField(
        choices=["ok", "transient", "permanent"],
        help_text="ok: the receiver accepted it; transient: a failure that may pass (a retry would be tried); "
        "permanent: a refusal or a configuration that cannot deliver.",
    )
    http_status = serializers.IntegerField(allow_null=True, help_text="The receiver's HTTP status, when it answered.")
    duration_ms = serializers.IntegerField(min_value=0)
    error = serializers.CharField(allow_blank=True, help_text="What went wrong, every secret hidden; empty when ok.")


# --- routes and alerts ----------------------------------------------------------------------------


class RouteMatchSerializer(serializers.Serializer[dict[str, Any]]):
    """A route's criteria; one left out (or empty) matches every alert."""

    types = serializers.ListField(
        child=choice_field(EventType, "type"), required=False, help_text="The alert's type is one of these."
    )
    severities = serializers.ListField(
        child=choice_field(Severity, "severity"), required=False,
        help_text="The alert's severity is one of these (an alert without severity does not match).",
    )
    certificate_ids = serializers.ListField(
        child=serializers.CharField(min_length=1, max_length=MAX_GLOB_LENGTH), required=False,
        max_length=MAX_CERTIFICATE_GLOBS,
        help_text="Globs (* ? [abc], case-sensitive); the alert's certificate id matches one of them.",
    )
    labels = serializers.DictField(
        child=serializers.CharField(min_length=1, max_length=255), required=False,
        help_text='Every key is among the alert\'s labels with an equal or glob-matching value, e.g. {"team": '
        '"payments", "env": "prod*"}.',
    )


class RouteSerializer(serializers.ModelSerializer[Route]):
    match = RouteMatchSerializer()
    destinations = serializers.SerializerMethodField(
        help_text="Destination names, in the order an alert's events are made (by name)."
    )
    position = serializers.IntegerField(
        min_value=0,
        help_text="Place in evaluation order (0 first); the default route is evaluated last whatever it says.",
    )
    continue_matching = serializers.BooleanField(
        help_text="After a match, keep evaluating the routes below (Alertmanager's `continue`)."
    )
    is_default = serializers.BooleanField(
        help_text="Takes the alerts no other route matched; at most one route is the default, its match is empty."
    )

    class Meta:
        model = Route
        fields = [
            "id", "name", "position", "match", "destinations", "continue_matching", "enabled", "is_default",
            "created_at", "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_destinations(self, route: Route) -> list[str]:
        return [destination.name for destination in route_destinations(route)]


# An answer of its own, not a list of them, although the view's action is "list".
RouteListSerializer = extend_schema_serializer(many=False)(envelope(
    "RouteListSerializer", RouteSerializer(many=True), total=serializers.IntegerField(min_value=0)
))


class RoutedDestinationSerializer(serializers.Serializer[tuple[str, str]]):
    name = serializers.CharField(help_text="The destination's name.")
    channel = choice_field(Channel, "channel")

    def to_representation(self, instance: tuple[str, str]) -> dict[str, str]:
        name, channel = instance
        return {"name": name, "channel": channel}


class RoutingSerializer(serializers.Serializer[Routing]):
    """Where an alert would go (queries.routing.Routing)."""

    destinations = RoutedDestinationSerializer(many=True, help_text="In the order the events would be created.")
    routes = serializers.ListField(
        child=serializers.CharField(), help_text="The routes that matched, in evaluation order (or the default route)."
    )


class AlertEventSerializer(serializers.Serializer[tuple[NotificationEvent, bool]]):
    id = serializers.CharField()
    destination = serializers.CharField()
    channel = choice_field(Channel, "channel")
    created = serializers.BooleanField(
        help_text="False when the destination already had an event with this dedup_key (that event is given)."
    )

    def to_representation(self, instance: tuple[NotificationEvent, bool]) -> dict[str, object]:
        event, created = instance
        return {"id": event.id, "destination": event.destination, "channel": event.channel, "created": created}


class AlertResultSerializer(serializers.Serializer[AlertResult]):
    """The events an alert made, one per destination (operations.alerts.AlertResult)."""

    events = AlertEventSerializer(many=True)
    routes = serializers.ListField(child=serializers.CharField(), help_text="The routes that matched.")
