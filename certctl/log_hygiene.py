"""What request data may look like in a log line: no key in a query string, no control character.

Used by the Django log filters and formatters (settings.LOGGING) and by gunicorn's access log (gunicorn.conf.py).
"""
import logging
import re
from typing import TYPE_CHECKING

from gunicorn.glogging import Logger as GunicornLogger

if TYPE_CHECKING:
    from django.http import HttpRequest

MASK = "[redacted]"
# Query parameters whose value is a credential: api_key, token, access_token, password, sig, session, ...
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&;](?:[^=&;\s\"'#]*?)(?:key|token|secret|pass|auth|sig|session|credential|jwt)"
    r"[^=&;\s\"'#]*=)(?P<value>[^&;\s\"'#]+)",
    re.IGNORECASE,
)
# C0 and C1 control characters and Unicode line separators: each could start a new line in a log viewer.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def mask_query_secrets(text: str) -> str:
    """`text` with the value of every credential-like query parameter replaced by [redacted]."""
    return _SECRET_PARAMETER.sub(lambda match: match["name"] + MASK, text)


def escape_controls(text: str) -> str:
    """`text` with control characters written as Python escapes (\\n, \\r, \\x1b), so that it stays one line."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def describe_request(request: "HttpRequest") -> str:
    """A request as a log field: method and path with query secrets masked (never repr(request))."""
    return f"{request.method} {mask_query_secrets(request.get_full_path())}"


class EscapingTextFormatter(logging.Formatter):
    """The text log format: one line per record whatever a request put in it; tracebacks follow as they are."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


# gunicorn atoms that carry the request line, its query, the referrer or credentials.
_URL_ATOMS = ("r", "U", "q", "f")
_CREDENTIAL_HEADERS = ("authorization", "cookie", "x-api-key")


class MaskingGunicornLogger(GunicornLogger):
    """gunicorn's access log without query-string keys, credentials in headers, or control characters."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if not isinstance(value, str):
                continue
            if name in _URL_ATOMS or name.startswith("{"):
                value = escape_controls(mask_query_secrets(value))
            if any(header in name for header in _CREDENTIAL_HEADERS) and name.startswith("{"):
                value = MASK
            atoms[name] = value
        return atoms
