"""JSON shapes of the API, with certctl's field names. Validation of meaning stays in notifications.services."""
from collections.abc import Mapping

from django.core.validators import RegexValidator
from rest_framework import serializers

from notifications.filtersets import FILTER_NAMES
from notifications.models import (
    EVENT_ID_PATTERN,
    EVENT_ID_RULE,
    AttemptOutcome,
    CauseKind,
    Channel,
    ChannelCondition,
    EventType,
    ListedStatus,
    NotificationAttempt,
    NotificationEvent,
    Severity,
    Status,
    event_id_problem,
)
from notifications.services import MAX_BULK_IDS

# What services.validate_event_input accepts, written so that the OpenAPI schema states it exactly:
# at least one character that str.strip() would keep, no NUL (PostgreSQL cannot store it).
_NOT_SPACE = r"[^\x00\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
SOME_TEXT = RegexValidator(rf"^[^\x00]*{_NOT_SPACE}[^\x00]*$", "must not be empty")
ONE_LINE_TEXT = RegexValidator(
    rf"^[^\x00\r\n]*{_NOT_SPACE}[^\x00\r\n]*$", "must not be empty or contain line breaks (CR, LF)"
)
NO_NUL = RegexValidator(r"^[^\x00]*$", "must not contain NUL characters")


class StrictCharField(serializers.CharField):
    """A JSON string only: 0 or true is a type error, not "0" or "True"."""

    default_error_messages = {"invalid": "must be a string"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false only: 0 or "yes" is a type error, not a boolean (a dry run must be meant)."""

    default_error_messages = {"invalid": "must be true or false"}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictRegexField(StrictCharField, serializers.RegexField):
    pass


def _choice(choices, name, **kwargs):
    return serializers.ChoiceField(
        choices=choices.choices,
        error_messages={"invalid_choice": f'unknown {name} "{{input}}"; expected one of {", ".join(choices.values)}'},
        **kwargs,
    )


class NotificationEventSerializer(serializers.ModelSerializer):
    type = _choice(EventType, "type")
    channel = _choice(Channel, "channel")
    severity = _choice(Severity, "severity", allow_null=True)
    status = _choice(
        ListedStatus, "status", source="listed_status", read_only=True,
        help_text='As certctl shows it: "read" once an operator acknowledged the event (read_at is set), '
        "else its delivery state. Acknowledging never stops a delivery: see delivery_status.",
    )
    delivery_status = _choice(
        Status, "delivery_status", source="status", read_only=True,
        help_text="Delivery state, whether read or not: pending, sent, failed or dead.",
    )

    class Meta:
        model = NotificationEvent
        fields = [
            "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
            "retry_count", "next_retry_at", "last_error", "sent_at", "created_at", "updated_at", "read_at",
            "dedup_key",
        ]
        read_only_fields = fields


class NotificationCreateSerializer(serializers.Serializer):
    id = StrictRegexField(
        EVENT_ID_PATTERN, required=False,
        help_text=f"Optional id chosen by the client ({EVENT_ID_RULE}); generated when absent.",
        error_messages={"invalid": f"must be {EVENT_ID_RULE} (it becomes part of URLs)"},
    )
    type = _choice(EventType, "type")
    channel = _choice(Channel, "channel")
    recipient = StrictCharField(
        max_length=1024, trim_whitespace=False, validators=[ONE_LINE_TEXT], help_text="E-mail address or channel-specific target.",
        error_messages={"blank": "must not be empty"},
    )
    message = StrictCharField(
        trim_whitespace=False, help_text="Body text; at most CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES bytes (UTF-8).",
        validators=[SOME_TEXT], error_messages={"blank": "must not be empty"},
    )
    certificate_id = StrictCharField(
        required=False, allow_null=True, allow_blank=True, max_length=255, trim_whitespace=False, validators=[NO_NUL]
    )
    severity = _choice(Severity, "severity", required=False, allow_null=True, allow_blank=True)
    dedup_key = StrictCharField(
        required=False, allow_null=True, allow_blank=True, max_length=255, trim_whitespace=False, validators=[NO_NUL],
        help_text="A second create with the same key returns the existing event (200) instead of a new one.",
    )

    def to_internal_value(self, data):
        """The fields' own checks, plus every unknown or read-only field named, all in one answer."""
        if not isinstance(data, Mapping):
            return super().to_internal_value(data)
        errors = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors.update(exc.detail)
        for name in sorted(set(data) - set(self.fields)):
            errors[name] = (
                "read-only: the service sets it, a create cannot" if name in NotificationEventSerializer.Meta.fields
                else f"unknown field; accepted are {', '.join(self.fields)}"
            )
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_id(self, value):
        problem = event_id_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def service_arguments(self):
        data = dict(self.validated_data)
        data["event_id"] = data.pop("id", None)
        return data


class NotificationAttemptSerializer(serializers.ModelSerializer):
    notification_id = serializers.CharField(source="event_id")
    outcome = _choice(AttemptOutcome, "outcome")
    resulting_status = _choice(
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


FILTER_LIST = ", ".join(FILTER_NAMES)


class BulkSelectionSerializer(serializers.Serializer):
    """Either a list of ids or list filters (notifications.filtersets, with the list's meaning), never both.

    Here only types are checked; the filter set judges the values, as it does for the list.
    """

    ids = serializers.ListField(
        child=StrictCharField(max_length=64, trim_whitespace=False, validators=[NO_NUL]), required=False, max_length=MAX_BULK_IDS,
        help_text=f"Events to select, at most {MAX_BULK_IDS}. Give either ids or filters, not both.",
        error_messages={"max_length": f"at most {MAX_BULK_IDS} ids per call; split the list into several calls"},
    )
    dry_run = StrictBooleanField(
        required=False, default=False,
        help_text="true: change nothing, answer how many events would change and a sample of their ids.",
    )

    def validate(self, attrs):
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        unknown = sorted(given - set(self.fields) - set(FILTER_NAMES))
        if unknown:
            raise serializers.ValidationError({name: f"unknown field; give ids, or filters among {FILTER_LIST}" for name in unknown})
        filters = {}
        for name in sorted(given & set(FILTER_NAMES)):
            value = self.initial_data[name]
            if not isinstance(value, str) or not value or "\x00" in value:
                raise serializers.ValidationError({name: "must be a non-empty string without NUL characters"})
            filters[name] = value
        if "ids" in attrs and filters:
            raise serializers.ValidationError({"ids": f"give either ids or filters ({FILTER_LIST}), not both"})
        if "ids" not in attrs and not filters:
            raise serializers.ValidationError({"ids": f"give a list of ids, or at least one filter ({FILTER_LIST})"})
        selection = {"ids": attrs["ids"]} if "ids" in attrs else {"filters": filters}
        return {**selection, "dry_run": attrs.get("dry_run", False)}


class BulkPreviewSerializer(serializers.Serializer):
    skipped = serializers.IntegerField(min_value=0, help_text="Selected events that would be left alone.")
    sample = serializers.ListField(
        child=serializers.CharField(), max_length=20, help_text="Up to 20 ids of events that would change, newest first."
    )


class RequeuePreviewSerializer(BulkPreviewSerializer):
    would_requeue = serializers.IntegerField(min_value=0, help_text="Events that would move back to pending.")


class ReadPreviewSerializer(BulkPreviewSerializer):
    would_mark_read = serializers.IntegerField(min_value=0, help_text="Unread events that would be marked read.")


class FailureGroupSerializer(serializers.Serializer):
    channel = _choice(Channel, "channel")
    kind = _choice(
        CauseKind, "kind",
        help_text="permanent: the final failure was a refusal that retrying cannot fix (HTTP 4xx, a bad configuration); "
        "transient: the retries ran out on failures that may pass (HTTP 5xx, timeouts).",
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


class FailureGroupListSerializer(serializers.Serializer):
    data = FailureGroupSerializer(many=True)
    total = serializers.IntegerField(min_value=0, help_text="Number of groups.")


class BulkRequeueResultSerializer(serializers.Serializer):
    requeued = serializers.IntegerField(min_value=0, help_text="Events moved back to pending.")
    skipped = serializers.IntegerField(
        min_value=0, help_text="Selected events left alone: unknown ids, not failed/dead, or being delivered right now."
    )


class BulkReadResultSerializer(serializers.Serializer):
    marked_read = serializers.IntegerField(
        min_value=0, help_text="Events acknowledged now (dead ones are thereby dismissed from the dead-letter queue)."
    )
    skipped = serializers.IntegerField(min_value=0, help_text="Selected events left alone: unknown ids or already read.")


class MarkedReadSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["marked_as_read"])


class RequeuedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["requeued"])


class StatsSummarySerializer(serializers.Serializer):
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


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text='The HTTP reason phrase, e.g. "Not Found".')
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    request_id = serializers.CharField(help_text="Also in the X-Request-ID header and in the server's log lines.")
    fields = serializers.DictField(
        child=serializers.CharField(), required=False,
        help_text="Validation errors only: a message per offending field (list items as ids[3]).",
    )



class ChannelSerializer(serializers.Serializer):
    name = _choice(Channel, "channel")
    configured = serializers.BooleanField(help_text="False when a required setting is missing: its events are dead-lettered.")
    state = serializers.ChoiceField(
        choices=ChannelCondition.choices,
        help_text="closed: deliveries flow; open: the circuit breaker holds the channel's events after consecutive "
        "transient failures and tries one per probe interval; paused: an operator holds them.",
    )
    since = serializers.DateTimeField(allow_null=True, help_text="When the channel was opened or paused; null when closed.")
    paused_by = serializers.CharField(allow_null=True, help_text="Who paused it; null unless paused.")
    consecutive_failures = serializers.IntegerField(min_value=0)
    next_probe_at = serializers.DateTimeField(allow_null=True, help_text="When an open channel's next probe is tried.")


class ChannelListSerializer(serializers.Serializer):
    data = ChannelSerializer(many=True)
    total = serializers.IntegerField(min_value=0)
