"""The log filter and formatters of settings.LOGGING and gunicorn's access logger (gunicorn.conf.py): no configured
secret in a log line (the channel registry says which, notifications.notifiers.configured_secrets), no key in a query
string, no control character.
"""
import logging
import re
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, cast

from gunicorn.glogging import Logger as GunicornLogger
from pythonjsonlogger.json import JsonFormatter

from notifications.notifiers import configured_secrets
from notifications.redaction import REDACTED, escape_controls, redact, redact_all

if TYPE_CHECKING:
    from django.http import HttpRequest
    from gunicorn._types import _EnvironType
    from gunicorn.glogging import _AtomsDict
    from gunicorn.http import Request
    from gunicorn.http.wsgi import Response

# What logging hands a formatter's formatException (sys.exc_info()'s shape).
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

MASK = REDACTED
# A query parameter, its "=" also percent-encoded (api_key%3D…). The name cannot contain "?": every "?", "&" and ";"
# starts a match attempt, and each attempt scans only up to the next one, so a match costs linear time.
_PARAMETER = re.compile(r"(?P<name>[?&;][^=?&;\s\"'#]*?(?:=|%3[Dd]))(?P<value>[^&;\s\"'#]+)")
# Parameter names whose value is a credential: api_key, token, access_token, password, sig, session, bearer, ...
_CREDENTIAL_NAME = re.compile(r"key|token|secret|pass|auth|sig|session|credential|jwt|bearer", re.IGNORECASE)
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def mask_query_secrets(text: str) -> str:
    """`text` with the value of every credential-like query parameter replaced by [redacted]."""
    return _PARAMETER.sub(
        lambda match: match["name"] + MASK if _CREDENTIAL_NAME.search(match["name"]) else match.group(), text
    )


def describe_request(request: "HttpRequest") -> str:
    """A request as a log field: method and path with query secrets masked (never repr(request))."""
    return f"{request.method} {mask_query_secrets(request.get_full_path())}"


class SecretRedactionFilter(logging.Filter):
    """Replaces configured secrets and credential-like query values (?api_key=…) in a record's message,
    traceback and extra fields with [redacted]."""

    def filter(self, record: logging.LogRecord) -> bool:
        hidden = configured_secrets()
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "get_full_path"):
            # django.request hands over the request itself; a formatter would print its repr, query and all.
            # Its query is as the client sent it: a key may be percent-encoded there.
            record.request = redact(describe_request(request), hidden, percent_decoded=True)
        message = record.getMessage()
        clean = mask_query_secrets(redact(message, hidden))
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # logging.Formatter prints a record's exc_text when set instead of rendering exc_info again.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, hidden)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, mask_query_secrets(redact(value, hidden)))
        return True


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines; renders tracebacks itself rather than using exc_text, so it redacts them too."""

    # python-json-logger widens the answer to a list of lines (its exc_info_as_array), beyond logging.Formatter's.
    def formatException(self, ei: ExcInfo) -> str | list[str]:  # type: ignore[override]
        formatted = super().formatException(ei)
        # A list of lines when the formatter is configured with exc_info_as_array.
        if isinstance(formatted, list):
            return redact_all(formatted, configured_secrets())
        return redact(formatted, configured_secrets())


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
    (API keys, the metrics token, every channel secret: notifications.notifiers.configured_secrets) is hidden
    wherever it appears, as is or percent-encoded; credential-like query values and credential headers are masked
    by name; control characters are escaped."""

    def atoms(
        self, resp: "Response", req: "Request", environ: "_EnvironType", request_time: timedelta
    ) -> "_AtomsDict":
        atoms = super().atoms(resp, req, environ, request_time)
        # Beside the fixed atoms its stubs list, gunicorn adds one per header ({name}i) and environ entry ({name}e).
        by_name = cast(dict[str, object], atoms)
        texts = {name: value for name, value in by_name.items() if isinstance(value, str)}
        redacted = redact_all(texts.values(), configured_secrets(), percent_decoded=True)
        for name, value in zip(texts, redacted, strict=True):
            if name in _QUERY_ATOMS:
                value = mask_query_secrets("?" + value)[1:]
            elif name in _URL_ATOMS or name.startswith("{"):
                value = mask_query_secrets(value)
            if name.startswith("{") and any(header in name.replace("_", "-") for header in _CREDENTIAL_HEADERS):
                value = MASK
            by_name[name] = escape_controls(value)
        return atoms
