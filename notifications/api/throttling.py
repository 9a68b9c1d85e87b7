"""Per-caller token bucket of the REST API (certctl's defaults: 50 requests/s, bursts of 100), kept in the Django
cache (notifications.ratelimit)."""
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from notifications.api.auth import APIKeyUser
from notifications.ratelimit import take_token

if TYPE_CHECKING:
    # For annotations only: DRF imports this module while rest_framework.views is still loading.
    from rest_framework.request import Request
    from rest_framework.views import APIView


def caller_identity(request: "Request") -> str:
    user = request.user
    if isinstance(user, APIKeyUser) and request.auth is not None:
        return f"key:{user.username}"
    if user is not None and getattr(user, "pk", None) is not None:
        return f"user:{user.pk}"
    return f"addr:{request.META.get('REMOTE_ADDR') or 'unknown'}"


class TokenBucketThrottle(BaseThrottle):
    """Refills CERTCTL_RATE_LIMIT_RPS tokens per second up to CERTCTL_RATE_LIMIT_BURST; 0 rps turns it off."""

    cache_prefix = "certctl:ratelimit:"
    wait_seconds: float | None = None

    def allow_request(self, request: "Request", view: "APIView") -> bool:
        rate = settings.CERTCTL_RATE_LIMIT_RPS
        self.wait_seconds = None
        if rate <= 0:
            return True
        self.wait_seconds = take_token(
            self.cache_prefix + caller_identity(request), rate, settings.CERTCTL_RATE_LIMIT_BURST
        )
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds
