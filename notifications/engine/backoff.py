"""The retry policy, free of I/O: how long to wait and when to give up.

backoff_delay(n) = min(BASE * 2^(n-1), CAP), optionally jittered, for the n-th failure.
"""
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from notifications.models import Status


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta
    cap: timedelta
    max_attempts: int
    jitter: float = 0.0

    @classmethod
    def from_settings(cls) -> "RetryPolicy":
        return cls(
            base=settings.CERTCTL_NOTIFICATION_BACKOFF_BASE,
            cap=settings.CERTCTL_NOTIFICATION_BACKOFF_CAP,
            max_attempts=settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS,
            jitter=settings.CERTCTL_NOTIFICATION_BACKOFF_JITTER,
        )


def backoff_delay(failures: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> timedelta:
    """The wait after the `failures`-th failed attempt (1-based)."""
    if failures < 1:
        raise ValueError("failures counts from 1")
    # Cap the exponent first: 2**1000 minutes would overflow timedelta long before the cap applies.
    exponent = min(failures - 1, 62)
    seconds = min(policy.base.total_seconds() * (2**exponent), policy.cap.total_seconds())
    if policy.jitter:
        seconds *= 1 + policy.jitter * (2 * rand() - 1)
        seconds = min(seconds, policy.cap.total_seconds())
    return timedelta(seconds=seconds)


@dataclass(frozen=True)
class FailureOutcome:
    status: str
    retry_count: int
    next_retry_at: datetime | None


def after_failure(
    previous_failures: int,
    now: datetime,
    policy: RetryPolicy,
    permanent: bool = False,
    retry_after: timedelta | None = None,
    rand: Callable[[], float] = random.random,
) -> FailureOutcome:
    """The event's state after one more failed attempt.

    Dead when the failure is permanent or it is failure number `max_attempts`;
    otherwise failed, due after the backoff or the receiver's Retry-After, whichever is later.
    """
    failures = previous_failures + 1
    if permanent or failures >= policy.max_attempts:
        return FailureOutcome(Status.DEAD, failures, None)
    wait = backoff_delay(failures, policy, rand)
    if retry_after is not None and retry_after > wait:
        wait = retry_after
    return FailureOutcome(Status.FAILED, failures, now + wait)
