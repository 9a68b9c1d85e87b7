"""The HTTP side every webhook-like channel shares: a client per send slot, parsed URLs, Retry-After, and a JSON
POST whose outcome is classified (sent, transient, permanent) with every secret kept out of its error text."""
import dataclasses
import email.utils
import functools
import json
import ssl
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from django.conf import settings

from notifications.notifiers import configured_secrets
from notifications.notifiers.base import ConfigField, DeliveryResult
from notifications.redaction import Secrets, redacted_excerpt, secret_fragments, url_credentials

# Statuses a receiver may accept later; every other 4xx will never be accepted as sent.
TRANSIENT_HTTP_STATUSES = {408, 425, 429}

# A receiver's Retry-After is honoured up to this; a larger value (or a typo such as a timestamp
# in seconds) would park the event for years and overflow date arithmetic.
MAX_RETRY_AFTER = timedelta(days=1)


def url_destination(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def http_timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT.total_seconds(),
        read=settings.CERTCTL_NOTIFICATION_READ_TIMEOUT.total_seconds(),
        write=settings.CERTCTL_NOTIFICATION_READ_TIMEOUT.total_seconds(),
        pool=settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT.total_seconds(),
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    # Built once per process: a context per client would load the CA bundle for every connection.
    return httpx.create_ssl_context()


def new_http_client() -> httpx.AsyncClient:
    """A client holding one keep-alive connection. The delivery engine keeps one per send slot of a destination:
    httpx's pool gets slower the more connections it juggles (at 128, several times slower than at 1)."""
    # httpx follows no redirect unless told to: post_json reports one as the configuration error it is.
    return httpx.AsyncClient(verify=tls_context(), limits=httpx.Limits(max_connections=1))


@functools.lru_cache(maxsize=64)
def parsed_url(url: str) -> httpx.URL:
    """The URL as httpx reads it, parsed once: given text, httpx parses it again for every request, and a channel
    posts to the same URL all day. Raises httpx.InvalidURL."""
    return httpx.URL(url)


def parse_retry_after(value: str | None, now: datetime | None = None) -> timedelta | None:
    """Retry-After as delta-seconds or an HTTP date, at most MAX_RETRY_AFTER; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        # Compared as text first: int() refuses strings of thousands of digits.
        if len(value) > 9:
            return MAX_RETRY_AFTER
        return min(timedelta(seconds=int(value)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return min(max(when - now, timedelta(0)), MAX_RETRY_AFTER)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    payload: object,
    *,
    receiver: str,
    url_field: ConfigField,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    secrets: tuple[str, ...] = (),
) -> DeliveryResult:
    """POST `payload` as JSON and classify the outcome.

    `receiver` names the destination in error texts (never the URL: it may carry a secret token);
    `url_field` is the field the URL comes from (its setting is what the operator fixes when the URL is wrong);
    `body` lets a caller sign the exact bytes it sends; `secrets` are removed from every error text,
    in case a receiver echoes the request back, before it is cut to length.
    """
    result = await _post(
        client, url, payload, receiver=receiver, url_field=url_field, headers=headers, body=body, secrets=secrets
    )
    if result.error:
        hidden = secret_fragments(url, *secrets) + configured_secrets()
        return dataclasses.replace(result, error=redacted_excerpt(result.error, hidden))
    return result


def reply_secrets(url: str, url_field: ConfigField, secrets: tuple[str, ...]) -> Secrets:
    """What to hide in a receiver's answer: every configured secret and, from 4 characters on, the channel's own
    secrets, the credentials in its URL and, when the URL is a secret one (a chat webhook's), every piece of it."""
    own_url = url if url_field.secret else ""
    own = secret_fragments(own_url, *secrets, *url_credentials(url), in_reply=True)
    return own + secret_fragments(url, *secrets) + configured_secrets()


async def _post(
    client: httpx.AsyncClient, url: str, payload: object, *, receiver: str, url_field: ConfigField,
    headers: dict[str, str] | None, body: bytes | None, secrets: tuple[str, ...],
) -> DeliveryResult:
    content = body if body is not None else json.dumps(payload, separators=(",", ":")).encode()
    request_headers = {"Content-Type": "application/json", "User-Agent": "certctl-notifications"}
    request_headers.update(headers or {})
    try:
        response = await client.post(parsed_url(url), content=content, headers=request_headers, timeout=http_timeout())
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        return DeliveryResult.permanent_failure(
            f"{receiver}: the configured URL is not a valid http(s) URL ({_reason(exc)}); fix {url_field.setting}"
        )
    except httpx.TimeoutException as exc:
        if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
            kind, limit = "connect", settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT
            variable = "CERTCTL_NOTIFICATION_CONNECT_TIMEOUT"
        else:
            kind, limit = "read", settings.CERTCTL_NOTIFICATION_READ_TIMEOUT
            variable = "CERTCTL_NOTIFICATION_READ_TIMEOUT"
        return DeliveryResult.transient(
            f"{receiver}: no answer within the {kind} timeout of {limit.total_seconds():g}s ({variable}); will retry"
        )
    except httpx.ConnectError as exc:
        return DeliveryResult.transient(f"{receiver}: could not connect ({_reason(exc)}); will retry")
    except httpx.HTTPError as exc:
        return DeliveryResult.transient(f"{receiver}: request failed ({_reason(exc)}); will retry")

    status = response.status_code
    if 200 <= status < 300:
        return DeliveryResult.success(http_status=status)
    # Redacted before it is cut; post_json redacts the whole error text again, with the usual thresholds.
    detail = redacted_excerpt(response.text, reply_secrets(url, url_field, secrets))
    message = f"{receiver} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in TRANSIENT_HTTP_STATUSES or status >= 500:
        return DeliveryResult.transient(
            message, http_status=status, retry_after=parse_retry_after(response.headers.get("Retry-After"))
        )
    if 300 <= status < 400:
        message = f"{receiver} answered HTTP {status} (a redirect, which is not followed); fix {url_field.setting}"
    return DeliveryResult.permanent_failure(message, http_status=status)


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
