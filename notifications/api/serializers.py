"""What the REST API accepts: a create and a bulk selection (typed strictly, so that the OpenAPI schema states it
exactly), and its error body. What it answers is notifications.serializers. Validation of meaning stays in
notifications.operations."""
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.validators import RegexValidator
from rest_framework import serializers

from notifications.filtersets import FILTER_NAMES
from notifications.models import (
    DESTINATION_NAME_PATTERN,
    DESTINATION_NAME_RULE,
    EVENT_ID_PATTERN,
    EVENT_ID_RULE,
    Channel,
    EventType,
    Severity,
    event_id_problem,
    labels_problem,
)
from notifications.queries.events import MAX_BULK_IDS
from notifications.serializers import NotificationEventSerializer, choice_field

if TYPE_CHECKING:
    from rest_framework.exceptions import _Detail

# What operations.events.validate_event_input accepts, written so that the OpenAPI schema states it exactly:
# at least one character that str.strip() would keep, no NUL (PostgreSQL cannot store it).
_NOT_SPACE = r"[^\x00\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
SOME_TEXT = RegexValidator(rf"^[^\x00]*{_NOT_SPACE}[^\x00]*$", "must not be empty")
ONE_LINE_TEXT = RegexValidator(
    rf"^[^\x00\r\n]*{_NOT_SPACE}[^\x00\r\n]*$", "must not be empty or contain line breaks (CR, LF)"
)
NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL = RegexValidator(NO_NUL_PATTERN, "must not contain NUL characters")


class StrictCharField(serializers.CharField):
    """A JSON string only: 0 or true is a type error, not "0" or "True"."""

    default_error_messages = {"invalid": "must be a string"}

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON true or false only: 0 or "yes" is a type error, not a boolean (a dry run must be meant)."""

    default_error_messages = {"invalid": "must be true or false"}

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictRegexField(StrictCharField, serializers.RegexField):
    pass


class CreateArguments(TypedDict):
    """A valid create, as operations.events.create_event takes it."""

    type: str
    channel: str | None
    destination: str | None
    labels: dict[str, str] | None
    recipient: str
    message: str
    certificate_id: str | None
    severity: str | None
    dedup_key: str | None
    event_id: str | None


class NotificationCreateSerializer(serializers.Serializer[CreateArguments]):
    id = StrictRegexField(
        EVENT_ID_PATTERN, required=False,
        help_text=f"Optional id chosen by the client ({EVENT_ID_RULE}); generated when absent.",
        error_messages={"invalid": f"must be {EVENT_ID_RULE} (it becomes part of URLs)"},
    )
    type = choice_field(EventType, "type")
    channel = choice_field(
        Channel, "channel", required=False,
        help_text="Required unless destination is given: the event goes to this channel's environment destination.",
    )
    destination = StrictRegexField(
        DESTINATION_NAME_PATTERN, required=False, max_length=64,
        error_messages={"invalid": f"must be {DESTINATION_NAME_RULE}"},
        help_text="A destination's name (GET /api/v1/destinations); its channel is the event's.",
    )
    labels = serializers.DictField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False), required=False,
        help_text='String labels routes match on and lists filter by, e.g. {"team": "payments"}.',
    )
    recipient = StrictCharField(
        max_length=1024, trim_whitespace=False, validators=[ONE_LINE_TEXT],
        help_text="E-mail address or channel-specific target.",
        error_messages={"blank": "must not be empty"},
    )
    message = StrictCharField(
        trim_whitespace=False, help_text="Body text; at most CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES bytes (UTF-8).",
        validators=[SOME_TEXT], error_messages={"blank": "must not be empty"},
    )
    certificate_id = StrictCharField(
        required=False, allow_null=True, allow_blank=True, max_length=255, trim_whitespace=False, validators=[NO_NUL]
    )
    severity = choice_field(Severity, "severity", required=False, allow_null=True, allow_blank=True)
    dedup_key = StrictCharField(
        required=False, allow_null=True, allow_blank=True, max_length=255, trim_whitespace=False, validators=[NO_NUL],
        help_text="A second create with the same key returns the existing event (200) instead of a new one.",
    )

    def to_internal_value(self, data: object) -> dict[str, object]:
        """The fields' own checks, plus every unknown or read-only field named, all in one answer."""
        if not isinstance(data, Mapping):
            refused: dict[str, object] = super().to_internal_value(data)  # DRF raises: not an object
            return refused
        value: dict[str, object] = {}
        errors: dict[str, _Detail | str] = {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors.update(exc.detail)
        if not data.get("channel") and not data.get("destination") and "channel" not in errors:
            errors["channel"] = "This field is required (or give a destination)."
        for name in sorted(set(data) - set(self.fields)):
            errors[name] = (
                "read-only: the service sets it, a create cannot" if name in NotificationEventSerializer.Meta.fields
                else f"unknown field; accepted are {', '.join(self.fields)}"
            )
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def validate_labels(self, value: dict[str, str]) -> dict[str, str]:
        problem = labels_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_id(self, value: str) -> str:
        problem = event_id_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def service_arguments(self) -> CreateArguments:
        data = self.validated_data
        return CreateArguments(
            type=data["type"], channel=data.get("channel"), destination=data.get("destination"),
            labels=data.get("labels"), recipient=data["recipient"], message=data["message"],
            certificate_id=data.get("certificate_id"), severity=data.get("severity"), dedup_key=data.get("dedup_key"),
            event_id=data.get("id"),
        )


FILTER_LIST = ", ".join(FILTER_NAMES)


class BulkSelection(TypedDict):
    """A valid selection: ids or filters (the other is None), and whether to change nothing."""

    ids: list[str] | None
    filters: dict[str, str] | None
    dry_run: bool


class BulkSelectionSerializer(serializers.Serializer[BulkSelection]):
    """Either a list of ids or list filters (notifications.filtersets, with the list's meaning), never both.

    Here only types are checked; the filter set judges the values, as it does for the list.
    """

    ids = serializers.ListField(
        child=StrictCharField(max_length=64, trim_whitespace=False, validators=[NO_NUL]),
        required=False,
        max_length=MAX_BULK_IDS,
        help_text=f"Events to select, at most {MAX_BULK_IDS}. Give either ids or filters, not both.",
        error_messages={"max_length": f"at most {MAX_BULK_IDS} ids per call; split the list into several calls"},
    )
    dry_run = StrictBooleanField(
        required=False, default=False,
        help_text="true: change nothing, answer how many events would change and a sample of their ids.",
    )

    def validate(self, attrs: Mapping[str, Any]) -> BulkSelection:
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        unknown = sorted(given - set(self.fields) - set(FILTER_NAMES))
        if unknown:
            raise serializers.ValidationError(
                {name: f"unknown field; give ids, or filters among {FILTER_LIST}" for name in unknown}
            )
        filters: dict[str, str] = {}
        for name in sorted(given & set(FILTER_NAMES)):
            value = self.initial_data[name]
            if not isinstance(value, str) or not value or "\x00" in value:
                raise serializers.ValidationError({name: "must be a non-empty string without NUL characters"})
            filters[name] = value
        if "ids" in attrs and filters:
            raise serializers.ValidationError({"ids": f"give either ids or filters ({FILTER_LIST}), not both"})
        if "ids" not in attrs and not filters:
            raise serializers.ValidationError({"ids": f"give a list of ids, or at least one filter ({FILTER_LIST})"})
        if "ids" in attrs:
            return BulkSelection(ids=attrs["ids"], filters=None, dry_run=attrs.get("dry_run", False))
        return BulkSelection(ids=None, filters=filters, dry_run=attrs.get("dry_run", False))


class ErrorSerializer(serializers.Serializer[Mapping[str, object]]):
    error = serializers.CharField(help_text='The HTTP reason phrase, e.g. "Not Found".')
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    request_id = serializers.CharField(help_text="Also in the X-Request-ID header and in the server's log lines.")
    # The body's key; SerializerMetaclass moves declared fields off the class, so Serializer.fields is not hidden.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), required=False,
        help_text="Validation errors only: a message per offending field (list items as ids[3]).",
    )
