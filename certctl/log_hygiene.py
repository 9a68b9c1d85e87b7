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
# A query parameter, its "=" also percent-encoded (api_key%3D…). The name cannot contain "?": every "?", "&" and ";"
# starts a match attempt, and each attempt scans only up to the next one, so a match costs linear time.
_PARAMETER = re.compile(r"(?P<name>[?&;][^=?&;\s\"'#]*?(?:=|%3[Dd]))(?P<value>[^&;\s\"'#]+)")
# Parameter names whose value is a credential: api_key, token, access_token, password, sig, session, bearer, ...
_CREDENTIAL_NAME = re.compile(r"key|token|secret|pass|auth|sig|session|credential|jwt|bearer", re.IGNORECASE)
# C0 and C1 control characters and Unicode line separators: each could start a new line in a log viewer.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def mask_query_secrets(text: str) -> str:
    """`text` with the value of every credential-like query parameter replaced by [redacted]."""
    return _PARAMETER.sub(lambda match: match["name"] + MASK if _CREDENTIAL_NAME.search(match["name"]) else match.group(), text)


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


# gunicorn atoms that carry the request line, its query or the referrer; the query atoms lack the leading "?".
_URL_ATOMS = ("r", "U", "q", "f")
_QUERY_ATOMS = ("q", "{query_string}e")
# Matched against header atoms ({authorization}i) and environ atoms ({http_authorization}e) alike.
_CREDENTIAL_HEADERS = ("authorization", "cookie", "x-api-key")


class MaskingGunicornLogger(GunicornLogger):
    """gunicorn's access log without secrets or control characters. In every string atom, each configured secret
    (API keys, the metrics token, every channel secret: notifications.redaction.configured_secrets) is hidden
    wherever it appears, as is or percent-encoded; credential-like query values and credential headers are masked
    by name; control characters are escaped."""

    def atoms(self, resp, req, environ, request_time):
        # Imported here: gunicorn loads its logger before the app, and with it Django, is set up.
        from notifications.redaction import configured_secrets, redact_all

        atoms = super().atoms(resp, req, environ, request_time)
        names = [name for name, value in atoms.items() if isinstance(value, str)]
        values = redact_all((atoms[name] for name in names), configured_secrets(), percent_decoded=True)
        for name, value in zip(names, values, strict=True):
            if name in _QUERY_ATOMS:
                value = mask_query_secrets("?" + value)[1:]
            elif name in _URL_ATOMS or name.startswith("{"):
                value = mask_query_secrets(value)
            if name.startswith("{") and any(header in name.replace("_", "-") for header in _CREDENTIAL_HEADERS):
                value = MASK
            atoms[name] = escape_controls(value)
        return atoms
