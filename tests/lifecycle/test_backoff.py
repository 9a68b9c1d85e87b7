"""The retry policy on its own: exponential waits, the cap, jitter with a fixed random draw, and when an event dies."""
from collections.abc import Callable
from datetime import timedelta

import pytest

from notifications.engine.backoff import FailureOutcome, RetryPolicy, after_failure, backoff_delay
from tests.lifecycle.conftest import MINUTE, T0

HOUR = timedelta(hours=1)
POLICY = RetryPolicy(base=MINUTE, cap=HOUR, max_attempts=5)
JITTERED = RetryPolicy(base=MINUTE, cap=HOUR, max_attempts=5, jitter=0.2)
# failures -> the un-jittered wait: doubling from the base until the cap holds it at one hour.
UNJITTERED = {1: MINUTE, 2: 2 * MINUTE, 3: 4 * MINUTE, 4: 8 * MINUTE, 5: 16 * MINUTE, 6: 32 * MINUTE, 7: HOUR, 8: HOUR}


def fixed(draw: float) -> Callable[[], float]:
    return lambda: draw


def no_draw() -> float:
    raise AssertionError("no random draw without jitter")


@pytest.mark.parametrize(("failures", "expected"), sorted(UNJITTERED.items()))
def test_without_jitter_the_wait_doubles_up_to_the_cap(failures, expected):
    assert backoff_delay(failures, POLICY, rand=no_draw) == expected


@pytest.mark.parametrize("failures", [63, 64, 1000, 10**6])
def test_a_huge_failure_count_waits_the_cap_instead_of_overflowing(failures):
    assert backoff_delay(failures, POLICY) == HOUR


@pytest.mark.parametrize("failures", [0, -1])
def test_failures_count_from_one(failures):
    with pytest.raises(ValueError, match="^failures counts from 1$"):
        backoff_delay(failures, POLICY)


# The random draw r in [0, 1) scales the wait by 1 + jitter * (2r - 1): 0.8 at r=0, 1.0 at r=0.5, just under 1.2 at r→1.
@pytest.mark.parametrize(("draw", "factor"), [(0, 0.8), (0.25, 0.9), (0.5, 1.0), (0.75, 1.1), (0.999, 1.1996)])
@pytest.mark.parametrize("failures", [1, 2, 3, 5, 6, 7, 8])
def test_jitter_keeps_every_wait_within_20_percent_of_the_unjittered_one_and_under_the_cap(failures, draw, factor):
    unjittered = UNJITTERED[failures]

    wait = backoff_delay(failures, JITTERED, rand=fixed(draw))

    assert 0.8 * unjittered <= wait <= 1.2 * unjittered
    assert wait <= HOUR
    assert wait.total_seconds() == pytest.approx(min(unjittered.total_seconds() * factor, HOUR.total_seconds()))


def test_jitter_draws_from_the_random_module_by_default():
    waits = {backoff_delay(3, JITTERED) for _ in range(50)}

    assert all(0.8 * 4 * MINUTE <= wait <= 1.2 * 4 * MINUTE for wait in waits)
    assert len(waits) > 1


def test_the_policy_comes_from_the_settings(settings):
    settings.CERTCTL_NOTIFICATION_BACKOFF_BASE = timedelta(seconds=5)
    settings.CERTCTL_NOTIFICATION_BACKOFF_CAP = timedelta(minutes=10)
    settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS = 7
    settings.CERTCTL_NOTIFICATION_BACKOFF_JITTER = 0.3

    assert RetryPolicy.from_settings() == RetryPolicy(
        base=timedelta(seconds=5), cap=timedelta(minutes=10), max_attempts=7, jitter=0.3
    )


@pytest.mark.parametrize(("previous", "wait"), [(0, MINUTE), (1, 2 * MINUTE), (3, 8 * MINUTE)])
def test_a_failure_before_the_last_attempt_schedules_the_retry_after_the_backoff(previous, wait):
    assert after_failure(previous, T0, POLICY) == FailureOutcome("failed", previous + 1, T0 + wait)


def test_the_failure_numbered_max_attempts_is_dead():
    assert after_failure(4, T0, POLICY) == FailureOutcome("dead", 5, None)
    assert after_failure(9, T0, POLICY) == FailureOutcome("dead", 10, None)


def test_a_permanent_failure_is_dead_at_once():
    assert after_failure(0, T0, POLICY, permanent=True) == FailureOutcome("dead", 1, None)


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [(10 * MINUTE, 10 * MINUTE), (2 * MINUTE, 2 * MINUTE), (timedelta(seconds=30), 2 * MINUTE), (None, 2 * MINUTE)],
)
def test_the_receivers_retry_after_counts_only_when_it_is_longer_than_the_backoff(retry_after, wait):
    assert after_failure(1, T0, POLICY, retry_after=retry_after) == FailureOutcome("failed", 2, T0 + wait)


def test_the_retry_time_uses_the_jittered_wait():
    assert after_failure(1, T0, JITTERED, rand=fixed(0)) == FailureOutcome("failed", 2, T0 + 0.8 * 2 * MINUTE)
