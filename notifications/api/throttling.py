"""Per-caller token bucket (certctl's defaults: 50 requests/s, bursts of 100).

Buckets live in the Django cache. The default local-memory cache is per process, so with several
gunicorn workers each worker allows the full rate; configure a shared cache (e.g. Redis) to make the
limit global.
"""
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from notifications.api.auth import APIKeyUser


def caller_identity(request):
    user = request.user
    if isinstance(user, APIKeyUser) and request.auth is not None:
        return f"key:{user.username}"
    if user is not None and getattr(user, "pk", None) is not None:
        return f"user:{user.pk}"
    return f"addr:{request.META.get('REMOTE_ADDR') or 'unknown'}"


class TokenBucketThrottle(BaseThrottle):
    """Refills CERTCTL_RATE_LIMIT_RPS tokens per second up to CERTCTL_RATE_LIMIT_BURST; 0 rps turns it off."""

    cache_prefix = "certctl:ratelimit:"

    def allow_request(self, request, view):
        rate = settings.CERTCTL_RATE_LIMIT_RPS
        burst = settings.CERTCTL_RATE_LIMIT_BURST
        self.wait_seconds = None
        if rate <= 0:
            return True
        key = self.cache_prefix + caller_identity(request)
        now = time.time()
        tokens, updated = cache.get(key, (float(burst), now))
        tokens = min(float(burst), tokens + max(now - updated, 0) * rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        else:
            self.wait_seconds = (1 - tokens) / rate
        # Keep an idle bucket only as long as it takes to refill completely.
        cache.set(key, (tokens, now), timeout=max(int(burst / rate) + 1, 1))
        return allowed

    def wait(self):
        return self.wait_seconds
