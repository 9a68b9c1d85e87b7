"""OpenAPI details drf-spectacular cannot infer: the Bearer scheme and the headers every response carries."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object

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


class BearerKeyScheme(OpenApiAuthenticationExtension):
    target_class = "notifications.api.auth.BearerKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        definition = build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Bearer")
        definition["description"] = (
            "A named key from CERTCTL_API_KEYS_NAMED (name:key[:admin]) or a database token of a Django user. "
            "Reading and marking read need any key; create and requeue need an admin key or the Django permission "
            "notifications.change_notificationevent."
        )
        return definition


def add_common_responses(result, generator, request, public):
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
                    schema.setdefault("pattern", "^[^\\x00]*$")
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
    return result
