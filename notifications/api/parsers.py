"""JSON bodies within bounds: a size limit (413) and a nesting limit (400) before anything else reads them."""
import io

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

# Requests nest two levels at most ({"ids": [...]}); deeper is a mistake or an attack on the recursive decoder.
MAX_JSON_DEPTH = 20


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


class LimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> object:
        limit = settings.CERTCTL_API_MAX_BODY_BYTES
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise PayloadTooLarge(
                f"the request body is larger than {limit} bytes (CERTCTL_API_MAX_BODY_BYTES); "
                "send fewer ids or a shorter message"
            )
        too_deep = ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels; requests need two at most")
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise too_deep from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise too_deep
        return data
