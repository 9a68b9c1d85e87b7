"""OpenAPI details drf-spectacular cannot infer: the Bearer scheme, the headers every response carries, the error
answers, the bulk requests' oneOf and the filters' time parameters."""
from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from notifications.api.parsers import MAX_JSON_DEPTH
from notifications.api.serializers import NO_NUL_PATTERN, ErrorSerializer
from notifications.filtersets import FILTER_NAMES, ISO_TIME_PATTERN, TIME_FILTERS, NotificationFilterSet
from notifications.models import LABEL_KEY_PATTERN, MAX_LABEL_VALUE, MAX_LABELS
from notifications.queries.events import MAX_BULK_IDS

if TYPE_CHECKING:
    from django.http import HttpRequest
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.openapi import AutoSchema

# An OpenAPI object, JSON as drf-spectacular builds it.
Schema = dict[str, Any]

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_HEADERS = {
    "X-Request-ID": {
        "description": "This request's id: the incoming X-Request-ID when well-formed (1-128 of A-Z a-z 0-9 . _ : -), "
        "else a new one. The server's log lines for the request carry it too.",
        "schema": {"type": "string"},
    },
    "Location": {"description": "URL of the created notification.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": 'Always `Bearer realm="certctl"`.', "schema": {"type": "string"}},
    "Allow": {"description": "The methods this path accepts.", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before the next request.", "schema": {"type": "integer"}},
}
_HEADERS_BY_CODE = {
    "201": ["Location"], "401": ["WWW-Authenticate"], "405": ["Allow"], "429": ["Retry-After"], "503": ["Retry-After"],
}
_COMMON_ERRORS = {
    "401": 'No key, or an unknown key. Send `Authorization: Bearer <key>`.',
    "429": "Rate limit reached (CERTCTL_RATE_LIMIT_RPS / CERTCTL_RATE_LIMIT_BURST per key); see Retry-After.",
    "500": "Unexpected server error; quote the request_id to the operator.",
    "503": "The database is not answering; nothing was changed. Retry after Retry-After seconds.",
}


# drf-spectacular registers each extension in an unannotated __init_subclass__.
class BearerKeyScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "notifications.api.auth.BearerKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: "AutoSchema") -> Schema:
        definition = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        definition["description"] = (
            "A named key from CERTCTL_API_KEYS_NAMED (name:key[:admin]) or a database token of a Django user. "
            "Reading and marking read need any key; create and requeue need an admin key or the Django permission "
            "notifications.change_notificationevent."
        )
        return definition


# What labels_problem accepts, as far as OpenAPI 3.0 can say it (it has no rule for keys: the description does).
LABELS_SCHEMA: Schema = {
    "maxProperties": MAX_LABELS,
    "description": 'String labels routes match on and lists filter by, e.g. {"team": "payments"}. Keys match '
    f"{LABEL_KEY_PATTERN}.",
    "additionalProperties": {"type": "string", "maxLength": MAX_LABEL_VALUE, "pattern": r"^[^\r\n\x00]*$"},
}


def add_common_responses(
    result: Schema, generator: "SchemaGenerator", request: "HttpRequest | None", public: bool
) -> Schema:
    """Every operation: X-Request-ID on every response, the 401/429/500/503 error answers, empty filter values."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if parameter["in"] != "query" or schema.get("type") != "string":
                    continue
                if "enum" in schema:
                    # An empty filter value (as HTML filter forms send it) means "any".
                    schema["enum"].append("")
                    parameter["description"] = parameter.get("description", "") + " Empty means any."
                else:
                    schema.setdefault("pattern", NO_NUL_PATTERN)
            responses = operation.setdefault("responses", {})
            for code, description in _COMMON_ERRORS.items():
                responses.setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}
                )
            for code, response in responses.items():
                headers = response.setdefault("headers", {})
                for name in ["X-Request-ID", *_HEADERS_BY_CODE.get(code, [])]:
                    headers[name] = {"$ref": f"#/components/headers/{name}"}
            body = operation.get("requestBody")
            if body and operation["operationId"] in ("notifications_bulk_requeue", "notifications_bulk_read"):
                body["required"] = True
    result.setdefault("components", {})["headers"] = _HEADERS
    # Create refuses fields it does not know (400 naming them), so the schema says so.
    create = result["components"].get("schemas", {}).get("NotificationCreate")
    if create is not None:
        create["additionalProperties"] = False
        # A channel (certctl's contract), a destination, or both.
        create["anyOf"] = [{"required": ["channel"]}, {"required": ["destination"]}]
        create["properties"]["labels"].update(LABELS_SCHEMA)
    return result


_ERROR_DESCRIPTIONS = {
    400: f"Invalid input: a query value, the JSON body (also when nested deeper than {MAX_JSON_DEPTH} levels) or a "
    "field; `fields` says which, and names unknown or read-only fields.",
    401: "No key, or an unknown key. Send `Authorization: Bearer <key>`. "
    'Comes with `WWW-Authenticate: Bearer realm="certctl"`.',
    403: "Creating and requeueing need an admin key (a read-only key may list, get and mark read), "
    "or a browser session sent no CSRF token.",
    404: "No notification with this id.",
    405: "Method not allowed here; the `Allow` header lists the allowed ones.",
    409: "The notification is not failed or dead (the message names its current status), "
    "or it is being delivered right now.",
    413: "The body is larger than CERTCTL_API_MAX_BODY_BYTES (2 MiB by default).",
    415: "The body is not JSON: send `Content-Type: application/json`.",
    422: "Well-formed, but the configuration cannot take it (an unknown or disabled destination, a destination of "
    "another channel, an alert no route sends anywhere); `fields` says which.",
}


def errors(*codes: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    return {
        code: OpenApiResponse(ErrorSerializer, description=descriptions.get(f"d{code}", _ERROR_DESCRIPTIONS[code]))
        for code in codes
    }


DRY_RUN = {
    "type": "boolean", "default": False,
    "description": "true: change nothing; answer how many events would change, how many would be skipped and up to "
    "20 of their ids.",
}


def filter_properties() -> dict[str, Schema]:
    """The list filters as JSON properties, described as the list's query parameters are."""
    properties: dict[str, Schema] = {}
    for name, declared in NotificationFilterSet.base_filters.items():
        schema: Schema = {"type": "string", "description": declared.extra.get("help_text", "")}
        if "choices" in declared.extra:
            schema["enum"] = [value for value, _ in declared.extra["choices"]]
        elif name in TIME_FILTERS:
            schema.update(minLength=1, pattern=ISO_TIME_PATTERN)
        else:
            schema.update(minLength=1, maxLength=declared.extra["max_length"], pattern=NO_NUL_PATTERN)
        properties[name] = schema
    return properties


def bulk_request(what: str) -> Schema:
    """Either ids or filters, never both: a oneOf that a serializer cannot express."""
    return {
        "oneOf": [
            {
                "title": "By ids",
                "type": "object",
                "required": ["ids"],
                "additionalProperties": False,
                "properties": {
                    "ids": {
                        "type": "array", "maxItems": MAX_BULK_IDS,
                        "items": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": NO_NUL_PATTERN},
                        "description": f"Notifications to {what}, at most {MAX_BULK_IDS}.",
                    },
                    "dry_run": DRY_RUN,
                },
            },
            {
                "title": "By filter",
                "type": "object",
                "description": "The list's filters, with the list's meaning; at least one besides dry_run.",
                "anyOf": [{"required": [name]} for name in FILTER_NAMES],
                "additionalProperties": False,
                "properties": {**filter_properties(), "dry_run": DRY_RUN},
            },
        ]
    }


# A pattern, not format date-time: an empty value means "no filter", as for every list filter, and a date alone is
# midnight UTC.
TIME_PARAMETERS = [
    OpenApiParameter(
        name, {"type": "string", "pattern": ISO_TIME_PATTERN}, OpenApiParameter.QUERY,
        description=NotificationFilterSet.base_filters[name].extra["help_text"],
        examples=[OpenApiExample("A time", value="2026-11-29T09:00:00Z")],
    )
    for name in TIME_FILTERS
]


EVENT_ID = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="The notification's id, e.g. notif-01JD0Z8F3QG5V8X4T6Y2R1M9KC.",
)
CHANNEL_NAME = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, description="A channel, e.g. Webhook (any letter case)."
)
