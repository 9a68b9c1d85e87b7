"""JSON bodies within bounds: a size limit (413), a nesting limit (400) and text that is Unicode (400), before
anything else reads them."""
import io
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser

# Requests nest two levels at most ({"ids": [...]}); deeper is a mistake or an attack on the recursive decoder.
MAX_JSON_DEPTH = 20
# JSON may escape half of a UTF-16 pair ("\udc80"); decoded, that is no character, and no database, log or JSON
# answer can encode it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
LONE_SURROGATE_ERROR = (
    "is not valid Unicode: it holds a lone surrogate escape (\\ud800-\\udfff without its pair); send UTF-8 text"
)


def too_large_message() -> str:
    return (
        f"the request body is larger than {settings.CERTCTL_API_MAX_BODY_BYTES} bytes (CERTCTL_API_MAX_BODY_BYTES); "
        "send fewer ids or a shorter message"
    )


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def _depth(value: object) -> int:
    """How deeply lists and objects nest in a decoded JSON value, without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in item)
    return deepest


def _readable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode()


def _with_lone_surrogate(value: object) -> str | None:
    """The field ("severity", "ids[3]", "a.b") of a string or object key holding a lone surrogate, if any, with
    such a key written as escapes."""
    pending: list[tuple[object, str]] = [(value, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str) and _LONE_SURROGATE.search(item):
            return path or "input"
        if isinstance(item, dict):
            for key, child in item.items():
                field = f"{path}.{key}" if path else key
                if _LONE_SURROGATE.search(key):
                    return _readable(field)
                pending.append((child, field))
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{index}]") for index, child in enumerate(item))
    return None


class LimitedJSONParser(JSONParser):
    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Mapping[str, object] | None = None
    ) -> dict[str, Any]:
        limit = settings.CERTCTL_API_MAX_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(too_large_message())
        too_deep = ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels; requests need two at most")
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise too_deep
        field = _with_lone_surrogate(data)
        if field is not None:
            raise ValidationError({field: LONE_SURROGATE_ERROR})
        return data
