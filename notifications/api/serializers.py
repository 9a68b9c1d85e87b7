"""What the REST API accepts: a create and a bulk selection (typed strictly, so that the OpenAPI schema states it
exactly), and its error body. What it answers is notifications.serializers. Validation of meaning stays in
notifications.operations."""
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from notifications.filtersets import FILTER_NAMES
from notifications.models import (
    DESTINATION_NAME_PATTERN,
    DESTINATION_NAME_RULE,
    EVENT_ID_PATTERN,
    EVENT_ID_RULE,
    MAX_LABELS,
    Channel,
    EventType,
    Severity,
    event_id_problem,
    labels_problem,
)
from notifications.operations.routes import MAX_ROUTE_DESTINATIONS, MAX_ROUTE_NAME
from notifications.queries.events import MAX_BULK_IDS
from notifications.queries.routing import MAX_CERTIFICATE_GLOBS, MAX_GLOB_LENGTH
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
ONE_LINE_PATTERN = r"^[^\x00\r\n]*$"
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


class StrictIntegerField(serializers.IntegerField):
    """A JSON number without fraction only (3 or 3.0): "3" or true is a type error."""

    default_error_messages = {"invalid": "must be a whole number"}

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, float) and data.is_integer():
            data = int(data)
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def unknown_field_errors(
    data: Mapping[str, object], accepted: Iterable[str], answered: Iterable[str]
) -> dict[str, str]:
    """A message for each field of `data` that a request does not take: the `answered` ones are the service's."""
    names, read_only = list(accepted), set(answered)
    return {
        name: (
            "read-only: the service sets it, a request cannot" if name in read_only
            else f"unknown field; accepted are {', '.join(names)}"
        )
        for name in sorted(set(data) - set(names))
    }


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
        errors.update(self.missing(data, errors))
        errors.update(unknown_field_errors(data, self.fields, NotificationEventSerializer.Meta.fields))
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def missing(self, data: Mapping[str, object], errors: Mapping[str, object]) -> dict[str, str]:
        if not data.get("channel") and not data.get("destination") and "channel" not in errors:
            return {"channel": "This field is required (or give a destination)."}
        return {}

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


def _refuse_unknown(serializer: serializers.Serializer[Any], data: object) -> dict[str, object]:
    """The serializer's own checks, plus every unknown field named, all in one answer."""
    if not isinstance(data, Mapping):
        refused: dict[str, object] = serializers.Serializer.to_internal_value(serializer, data)  # not an object
        return refused
    value: dict[str, object] = {}
    errors: dict[str, _Detail | str] = {}
    try:
        value = serializers.Serializer.to_internal_value(serializer, data)
    except serializers.ValidationError as exc:
        if not isinstance(exc.detail, dict):
            raise
        errors.update(exc.detail)
    errors.update(unknown_field_errors(data, serializer.fields, []))
    if errors:
        raise serializers.ValidationError(errors)
    return value


def _config_field() -> serializers.DictField:
    return serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="The channel's fields (docs/channels.md): e.g. Webhook {\"url\", \"secret\"}. Secret fields are "
        "write-only: never answered, listed in secrets_set once set.",
    )


def _description_field() -> StrictCharField:
    return StrictCharField(required=False, allow_blank=True, max_length=500, validators=[NO_NUL])


class DestinationCreate(TypedDict):
    name: str
    channel: str
    config: dict[str, Any]
    enabled: bool
    description: str


class DestinationCreateSerializer(serializers.Serializer[DestinationCreate]):
    name = StrictRegexField(
        DESTINATION_NAME_PATTERN, help_text=f"{DESTINATION_NAME_RULE}; cannot be changed later.",
        error_messages={"invalid": f"must be {DESTINATION_NAME_RULE} (it becomes part of URLs and metric labels)"},
    )
    channel = choice_field(Channel, "channel")
    config = _config_field()
    enabled = StrictBooleanField(required=False, default=True)
    description = _description_field()

    def to_internal_value(self, data: object) -> dict[str, object]:
        return _refuse_unknown(self, data)


class DestinationUpdate(TypedDict, total=False):
    config: dict[str, Any]
    enabled: bool
    description: str


class DestinationUpdateSerializer(serializers.Serializer[DestinationUpdate]):
    config = _config_field()
    enabled = StrictBooleanField(required=False)
    description = _description_field()

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["config"].required = False
        self.fields["config"].help_text = (
            "Fields to change, merged into the destination's: a field left out keeps its value (a secret one too); "
            "one given as \"\" or null is cleared."
        )

    def to_internal_value(self, data: object) -> dict[str, object]:
        return _refuse_unknown(self, data)


class AlertArguments(TypedDict):
    """A valid alert, as operations.alerts.create_alert takes it."""

    type: str
    message: str
    certificate_id: str | None
    severity: str | None
    labels: dict[str, str] | None
    recipient: str | None
    dedup_key: str | None


class AlertCreateSerializer(NotificationCreateSerializer):
    """An alert: a notification without channel or destination, which the routes choose."""

    id = None  # type: ignore[assignment]
    channel = None  # type: ignore[assignment]
    destination = None  # type: ignore[assignment]
    recipient = StrictCharField(
        required=False, allow_null=True, max_length=1024, trim_whitespace=False, validators=[ONE_LINE_TEXT],
        help_text="E-mail address or channel-specific target, the same for every destination. Left out: each event "
        "names its destination, an Email destination's its `recipients` (refused when it has none).",
    )

    def missing(self, data: Mapping[str, object], errors: Mapping[str, object]) -> dict[str, str]:
        return {}

    def alert_arguments(self) -> AlertArguments:
        data = self.validated_data
        return AlertArguments(
            type=data["type"], message=data["message"], certificate_id=data.get("certificate_id"),
            severity=data.get("severity"), labels=data.get("labels"), recipient=data.get("recipient"),
            dedup_key=data.get("dedup_key"),
        )


# What queries.routing.clean_match accepts, stated for the OpenAPI schema; the operation judges the value.
ROUTE_MATCH_SCHEMA: dict[str, object] = {
    "type": "object",
    "additionalProperties": False,
    "description": "The route's criteria; one left out or empty matches every alert. The default route's is empty.",
    "properties": {
        "types": {"type": "array", "items": {"type": "string", "enum": EventType.values}},
        "severities": {"type": "array", "items": {"type": "string", "enum": Severity.values}},
        "certificate_ids": {
            "type": "array", "maxItems": MAX_CERTIFICATE_GLOBS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_GLOB_LENGTH, "pattern": ONE_LINE_PATTERN},
            "description": "Globs (* ? [abc], case-sensitive) the certificate id must match one of.",
        },
        "labels": {
            "type": "object", "maxProperties": MAX_LABELS,
            "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": ONE_LINE_PATTERN},
            "description": "Label keys with the value or glob each must have.",
        },
    },
}


@extend_schema_field(ROUTE_MATCH_SCHEMA)
class RouteMatchField(serializers.JSONField):
    """A route's match as given: queries.routing.clean_match judges it, naming each criterion."""


class RouteChange(TypedDict, total=False):
    """A valid create or update, as operations.routes takes it (an update: only the fields given)."""

    name: str
    match: object
    destinations: list[str]
    continue_matching: bool
    enabled: bool
    is_default: bool
    position: int | None


class RouteWriteSerializer(serializers.Serializer[RouteChange]):
    name = StrictCharField(
        max_length=MAX_ROUTE_NAME, trim_whitespace=False, validators=[ONE_LINE_TEXT],
        help_text="Unique; shown in every answer that says which routes an alert took.",
    )
    match = RouteMatchField(required=False)
    destinations = serializers.ListField(
        child=StrictCharField(min_length=1, max_length=64, trim_whitespace=False, validators=[NO_NUL]),
        max_length=MAX_ROUTE_DESTINATIONS,
        help_text="Destination names (GET /api/v1/destinations); disabled ones are skipped when routing.",
    )
    continue_matching = StrictBooleanField(
        required=False, help_text="After a match, keep evaluating the routes below (default false)."
    )
    enabled = StrictBooleanField(required=False, help_text="Default true.")
    is_default = StrictBooleanField(
        required=False, help_text="The route for alerts no other route matched; at most one, with an empty match."
    )
    position = StrictIntegerField(
        min_value=0, required=False, allow_null=True,
        help_text="Place in evaluation order, 0 first; left out or null on create: last. Routes below move down.",
    )

    def to_internal_value(self, data: object) -> RouteChange:
        if isinstance(data, Mapping):
            unknown = unknown_field_errors(data, self.fields, ["id", "created_at", "updated_at"])
            if unknown:
                raise serializers.ValidationError(unknown)
        value: RouteChange = super().to_internal_value(data)
        return value


class RouteOrderSerializer(serializers.Serializer[dict[str, list[int]]]):
    order = serializers.ListField(
        child=StrictIntegerField(), max_length=10_000,
        help_text="Every route's id but the default route's, each once, first to be evaluated first.",
    )

    def to_internal_value(self, data: object) -> dict[str, list[int]]:
        if isinstance(data, Mapping) and (unknown := unknown_field_errors(data, self.fields, [])):
            raise serializers.ValidationError(unknown)
        value: dict[str, list[int]] = super().to_internal_value(data)
        return value


class ErrorSerializer(serializers.Serializer[Mapping[str, object]]):
    error = serializers.CharField(help_text='The HTTP reason phrase, e.g. "Not Found".')
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    request_id = serializers.CharField(help_text="Also in the X-Request-ID header and in the server's log lines.")
    # The body's key; SerializerMetaclass moves declared fields off the class, so Serializer.fields is not hidden.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), required=False,
        help_text="Validation errors only: a message per offending field (list items as ids[3]).",
    )
