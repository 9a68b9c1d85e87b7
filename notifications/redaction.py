"""Keeping configured secrets out of logs and error texts.

Notifiers already remove their own secrets from the errors they return; this is the net under
them, for text nobody thought of (a traceback quoting a webhook URL, a library's message).
"""
import logging
from functools import lru_cache

from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from notifications.notifiers.base import redact, secret_fragments

_SECRET_SETTINGS = (
    "CERTCTL_SMTP_PASSWORD", "CERTCTL_WEBHOOK_SECRET", "CERTCTL_PAGERDUTY_ROUTING_KEY", "CERTCTL_OPSGENIE_API_KEY",
    "CERTCTL_METRICS_TOKEN", "SECRET_KEY",
)
# Chat webhook URLs carry their token in the path: the whole URL is a secret.
_SECRET_URL_SETTINGS = ("CERTCTL_WEBHOOK_URL", "CERTCTL_SLACK_WEBHOOK_URL", "CERTCTL_TEAMS_WEBHOOK_URL")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def configured_secrets():
    """Every secret in the current settings, as fragments to hide (see notifiers.base.secret_fragments)."""
    return _fragments(
        tuple(getattr(settings, name, "") or "" for name in _SECRET_SETTINGS),
        tuple(getattr(settings, name, "") or "" for name in _SECRET_URL_SETTINGS),
        getattr(settings, "CERTCTL_API_KEYS_NAMED", "") or "",
        settings.DATABASES.get("default", {}).get("PASSWORD") or "",
    )


@lru_cache(maxsize=8)
def _fragments(values, urls, named_keys, database_password):
    api_keys = [parts[1] for parts in (entry.strip().split(":") for entry in named_keys.split(",")) if len(parts) >= 2]
    hidden = set(secret_fragments("", *values, *api_keys, database_password))
    for url in urls:
        hidden.update(secret_fragments(url))
    return tuple(hidden)


class SecretRedactionFilter(logging.Filter):
    """Replaces configured secrets in a record's message, traceback and extra fields with [redacted]."""

    def filter(self, record):
        hidden = configured_secrets()
        if not hidden:
            return True
        message = record.getMessage()
        clean = redact(message, hidden)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # logging.Formatter prints a record's exc_text when set instead of rendering exc_info again.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, hidden)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value, hidden))
        return True


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines; renders tracebacks itself rather than using exc_text, so it redacts them too."""

    def formatException(self, ei):
        return redact(super().formatException(ei), configured_secrets())
