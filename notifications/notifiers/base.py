"""What every channel shares: the result of one delivery and a JSON POST with error classification."""
import email.utils
import json
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
from django.conf import settings

# Statuses a receiver may accept later; every other 4xx will never be accepted as sent.
TRANSIENT_HTTP_STATUSES = {408, 425, 429}


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    error: str = ""
    permanent: bool = False
    retry_after: timedelta | None = None
    http_status: int | None = None

    @classmethod
    def success(cls, http_status=None):
        return cls(ok=True, http_status=http_status)

    @classmethod
    def transient(cls, error, http_status=None, retry_after=None):
        return cls(ok=False, error=error, http_status=http_status, retry_after=retry_after)

    @classmethod
    def permanent_failure(cls, error, http_status=None):
        return cls(ok=False, error=error, permanent=True, http_status=http_status)


class Notifier:
    """One channel. `send` never raises for delivery problems: it returns a DeliveryResult."""

    channel = ""

    def send(self, event):
        raise NotImplementedError


def http_timeout():
    return httpx.Timeout(
        connect=settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT.total_seconds(),
        read=settings.CERTCTL_NOTIFICATION_READ_TIMEOUT.total_seconds(),
        write=settings.CERTCTL_NOTIFICATION_READ_TIMEOUT.total_seconds(),
        pool=settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT.total_seconds(),
    )


_client = None
_client_lock = threading.Lock()


def shared_client():
    """One pooled HTTP client per process: building a client (and its TLS context) per send costs more than the send."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                follow_redirects=False,
                limits=httpx.Limits(max_connections=max(100, settings.CERTCTL_NOTIFICATION_CONCURRENCY * 2)),
            )
        return _client


def parse_retry_after(value, now=None):
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(when - now, timedelta(0))


def _body_excerpt(response, limit=300):
    text = response.text.strip().replace("\n", " ")
    return text[:limit] + ("…" if len(text) > limit else "")


def post_json(url, payload, *, receiver, headers=None, body=None):
    """POST `payload` as JSON and classify the outcome.

    `receiver` names the destination in error texts (never the URL: it may carry a secret token).
    `body` lets a caller sign the exact bytes it sends.
    """
    content = body if body is not None else json.dumps(payload, separators=(",", ":")).encode()
    request_headers = {"Content-Type": "application/json", "User-Agent": "certctl-notifications"}
    request_headers.update(headers or {})
    try:
        response = shared_client().post(url, content=content, headers=request_headers, timeout=http_timeout())
    except httpx.TimeoutException as exc:
        kind = "connect" if isinstance(exc, httpx.ConnectTimeout) else "read"
        limit = (
            settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT
            if kind == "connect"
            else settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
        )
        return DeliveryResult.transient(f"{receiver}: no answer within the {kind} timeout of {limit.total_seconds():g}s")
    except httpx.ConnectError as exc:
        return DeliveryResult.transient(f"{receiver}: could not connect ({_reason(exc)})")
    except httpx.HTTPError as exc:
        return DeliveryResult.transient(f"{receiver}: request failed ({_reason(exc)})")

    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult.success(http_status=status)
    detail = _body_excerpt(response)
    message = f"{receiver} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in TRANSIENT_HTTP_STATUSES or status >= 500:
        return DeliveryResult.transient(
            message, http_status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if 300 <= status < 400:
        message = f"{receiver} answered HTTP {status} (redirect to {response.headers.get('Location', '?')}); fix the configured URL"
    return DeliveryResult.permanent_failure(message, http_status=status)


def _reason(exc):
    text = str(exc) or type(exc).__name__
    return text[:200]
