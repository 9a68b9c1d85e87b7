"""Keeping secrets out of error texts and logs.

A secret is every configured secret value and every token-like piece of a secret URL, in each form a
receiver or a library may echo it: as is, JSON-escaped, URL-encoded and base64 (which is how SMTP AUTH
and HTTP Basic carry a password). Texts are redacted whole and only then cut to length, so that a cut
can never split a secret into pieces that no longer match.
"""
import base64
import json
import logging
import re
from functools import lru_cache
from urllib.parse import quote, quote_plus, urlsplit

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from certctl.log_hygiene import describe_request, mask_query_secrets

REDACTED = "[redacted]"
# Shorter values are not worth hiding and would garble error texts ("/" or "/hook").
_MIN_SECRET_LENGTH = 8
# URL pieces at least this long are hidden even when they look like words.
_MIN_PLAIN_TOKEN_LENGTH = 16
# A URL piece with a digit or a capital letter is a token from this length on (e.g. a 14-character Slack token).
_MIN_TOKEN_LENGTH = 4
# Error texts kept in the database and shown in the UI, the API and logs are cut to this many characters.
MAX_ERROR_LENGTH = 500

# The service's own secrets; each channel's come from the notifier registry (notifications.notifiers).
_SERVICE_SECRET_SETTINGS = ("CERTCTL_METRICS_TOKEN", "SECRET_KEY")
_URL_PIECE_SEPARATORS = re.compile(r"[/?&=@;,+]")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _is_token(piece: str) -> bool:
    if len(piece) >= _MIN_PLAIN_TOKEN_LENGTH:
        return True
    return len(piece) >= _MIN_TOKEN_LENGTH and any(ch.isdigit() or ch.isupper() for ch in piece)


def _base64_cores(value: str) -> list[str]:
    """The base64 characters that depend on `value` alone, for each of the three alignments it can have
    inside a longer encoded string (SMTP AUTH PLAIN encodes "\\0user\\0password" as one string)."""
    raw = value.encode()
    cores = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Character i carries bits 6i..6i+5, i.e. bytes 6i//8 to (6i+5)//8 of the shifted input.
        inside = [i for i in range(len(encoded)) if 6 * i // 8 >= shift and (6 * i + 5) // 8 < shift + len(raw)]
        if inside:
            core = encoded[inside[0]:inside[-1] + 1]
            cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


def _encoded_forms(value: str) -> list[str]:
    escaped = json.dumps(value)[1:-1]
    # quote() keeps "/" unless told otherwise; quote_plus() encodes it.
    forms = [value, escaped, escaped.replace("/", "\\/"), quote(value, safe=""), quote_plus(value), quote(value)]
    forms += _base64_cores(value)
    return forms


def secret_fragments(url: str, *values: str) -> tuple[str, ...]:
    """Every form in which the given secrets, and a secret URL, its path, query and token-like pieces,
    must never appear in an error text or a log line."""
    plain = [value for value in values if value]
    if url:
        parts = urlsplit(url)
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        plain += [url, path_and_query, parts.query]
        plain += [piece for piece in _URL_PIECE_SEPARATORS.split(path_and_query) if _is_token(piece)]
    fragments = {form for value in plain for form in _encoded_forms(value)}
    # In no particular order: redact() takes the longest first.
    return tuple(f for f in fragments if len(f) >= _MIN_SECRET_LENGTH or f in plain and _is_token(f))


def redact(text: str, secrets) -> str:
    # Longest first, so that a URL is hidden whole rather than leaving its host around a hidden path.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def redacted_excerpt(text: str, secrets, limit: int = MAX_ERROR_LENGTH) -> str:
    """`text` with every secret hidden, on one line, then cut to `limit` characters (in this order)."""
    clean = " ".join(redact(text, secrets).split())
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def configured_secrets() -> tuple[str, ...]:
    """Every secret in the current settings, as fragments to hide (see secret_fragments)."""
    # Imported here: the notifiers import this module.
    from notifications.notifiers import secret_settings

    channels = secret_settings()
    return _fragments(
        tuple(getattr(settings, name) for name in _SERVICE_SECRET_SETTINGS) + channels.values,
        channels.urls,
        settings.CERTCTL_API_KEYS_NAMED,
        settings.DATABASES["default"].get("PASSWORD"),
    )


@lru_cache(maxsize=8)
def _fragments(values: tuple[str, ...], urls: tuple[str, ...], named_keys: str, database_password: str | None) -> tuple[str, ...]:
    api_keys = [parts[1] for parts in (entry.strip().split(":") for entry in named_keys.split(",")) if len(parts) >= 2]
    hidden = set(secret_fragments("", *values, *api_keys, database_password))
    for url in urls:
        hidden.update(secret_fragments(url))
    return tuple(sorted(hidden, key=len, reverse=True))


class SecretRedactionFilter(logging.Filter):
    """Replaces configured secrets and credential-like query values (?api_key=…) in a record's message,
    traceback and extra fields with [redacted]."""

    def filter(self, record):
        request = getattr(record, "request", None)
        if request is not None and hasattr(request, "get_full_path"):
            # django.request hands over the request itself; a formatter would print its repr, query and all.
            record.request = describe_request(request)
        hidden = configured_secrets()
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

    def formatException(self, ei):
        return redact(super().formatException(ei), configured_secrets())
