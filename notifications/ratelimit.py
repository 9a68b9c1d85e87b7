"""Token buckets in the Django cache: the per-caller request rate of the REST API (notifications.api.throttling) and
the failed authentications per client address, which the API's key check and the UI's and the admin's login pages
count alike (notifications.web.logins), so that guessing keys and passwords is slow while valid keys and logins are
never held up.

The default local-memory cache is per process, so with several gunicorn workers each worker allows the full rate;
configure a shared cache (e.g. Redis) to make the limits global.
"""
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


def _tokens(key: str, rate: float, burst: int, now: float) -> float:
    bucket: tuple[float, float] = cache.get(key, (float(burst), now))  # (tokens, when counted), as take_token stores it
    tokens, updated = bucket
    return min(float(burst), tokens + max(now - updated, 0) * rate)


def token_wait(key: str, rate: float, burst: int, now: float | None = None) -> float | None:
    """None when the bucket `key` has a token, else the seconds until it will; takes none."""
    tokens = _tokens(key, rate, burst, time.time() if now is None else now)
    return None if tokens >= 1 else (1 - tokens) / rate


def take_token(key: str, rate: float, burst: int, now: float | None = None) -> float | None:
    """Take one token from the bucket `key` (refilled at `rate` per second up to `burst`).
    Returns None when there was one, else the seconds until there will be."""
    now = time.time() if now is None else now
    tokens = _tokens(key, rate, burst, now)
    wait = None
    if tokens >= 1:
        tokens -= 1
    else:
        wait = (1 - tokens) / rate
    # Keep an idle bucket only as long as it takes to refill completely.
    cache.set(key, (tokens, now), timeout=max(int(burst / rate) + 1, 1))
    return wait


def _failures_bucket(request: HttpRequest) -> tuple[str, float, int] | None:
    """The client address's bucket of failed authentications (CERTCTL_AUTH_FAILURE_BURST, refilled at
    CERTCTL_AUTH_FAILURES_PER_MINUTE), or None when that limit is off."""
    per_minute = settings.CERTCTL_AUTH_FAILURES_PER_MINUTE
    if per_minute <= 0:
        return None
    key = f"certctl:authfail:{request.META.get('REMOTE_ADDR') or 'unknown'}"
    return key, per_minute / 60, settings.CERTCTL_AUTH_FAILURE_BURST


def failed_authentication_wait(request: HttpRequest) -> float | None:
    """Count a failed authentication (a request without a valid key, a wrong password) against its client
    address. Returns None while the address has failures left, else the seconds until it has one again.
    Requests with a valid key and successful logins never come here."""
    bucket = _failures_bucket(request)
    return None if bucket is None else take_token(*bucket)


def authentication_failures_wait(request: HttpRequest) -> float | None:
    """None while the client address may still fail to authenticate, else the seconds until it may again;
    counts nothing."""
    bucket = _failures_bucket(request)
    return None if bucket is None else token_wait(*bucket)
