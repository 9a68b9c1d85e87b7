"""Per-key token bucket: CERTCTL_RATE_LIMIT_RPS refill, CERTCTL_RATE_LIMIT_BURST capacity, 429 + Retry-After."""
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from notifications.queries.events import get_event
from tests.api.conftest import ADMIN_KEY, READ_KEY, assert_error

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def slow_limit(settings):
    settings.CERTCTL_RATE_LIMIT_RPS = 0.5
    settings.CERTCTL_RATE_LIMIT_BURST = 3


def test_burst_then_429_with_retry_after(slow_limit, admin):
    with time_machine.travel(START, tick=False):
        assert [admin.get("/api/v1/notifications").status_code for _ in range(3)] == [200, 200, 200]
        response = admin.get("/api/v1/notifications")
    body = assert_error(
        response, 429, "Too Many Requests", "rate limit of 0.5 requests/s (bursts of 3) reached", "retry in 2 s"
    )
    assert response["Retry-After"] == "2"
    assert body["request_id"] == response["X-Request-ID"]


def test_tokens_refill_at_the_configured_rate(slow_limit, admin):
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            admin.get("/api/v1/notifications")
        assert admin.get("/api/v1/notifications").status_code == 429
        clock.shift(timedelta(seconds=2))
        assert admin.get("/api/v1/notifications").status_code == 200
        assert admin.get("/api/v1/notifications").status_code == 429


def test_each_key_has_its_own_bucket(slow_limit, admin, reader):
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            admin.get("/api/v1/notifications")
        assert admin.get("/api/v1/notifications").status_code == 429
        assert reader.get("/api/v1/notifications").status_code == 200


def test_writes_count_against_the_same_bucket(slow_limit, admin, dead_event):
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            admin.get("/api/v1/stats/summary")
        response = admin.post(f"/api/v1/notifications/{dead_event.id}/requeue")
    assert response.status_code == 429
    assert get_event(dead_event.id).status == "dead"


def test_zero_rate_turns_the_limit_off(settings, admin):
    settings.CERTCTL_RATE_LIMIT_RPS = 0
    settings.CERTCTL_RATE_LIMIT_BURST = 1
    with time_machine.travel(START, tick=False):
        assert {admin.get("/api/v1/stats/summary").status_code for _ in range(5)} == {200}


def test_default_allows_a_burst_of_100(admin):
    with time_machine.travel(START, tick=False):
        statuses = [admin.get("/api/v1/stats/summary").status_code for _ in range(101)]
    assert statuses.count(200) == 100
    assert statuses[-1] == 429


# --- failed authentication, per client address ------------------------------------


@pytest.fixture
def guessing_limit(settings):
    settings.CERTCTL_AUTH_FAILURE_BURST = 5
    settings.CERTCTL_AUTH_FAILURES_PER_MINUTE = 6  # one every 10 s


def guess(client, address="198.51.100.7", key="guessed-key"):
    return client.get("/api/v1/notifications", headers={"Authorization": f"Bearer {key}"}, REMOTE_ADDR=address)


def test_wrong_keys_from_one_address_get_429_with_retry_after(guessing_limit, anonymous):
    with time_machine.travel(START, tick=False):
        statuses = [guess(anonymous, key=f"guess-{n}").status_code for n in range(8)]
        response = guess(anonymous)
    assert statuses == [401] * 5 + [429] * 3
    assert_error(response, 429, "Too Many Requests", "too many requests without a valid API key from 198.51.100.7")
    assert response["Retry-After"] == "10"


def test_requests_without_any_key_count_as_failures_too(guessing_limit, anonymous):
    with time_machine.travel(START, tick=False):
        statuses = [anonymous.get("/api/v1/notifications", REMOTE_ADDR="198.51.100.7").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_a_valid_key_from_a_blocked_address_still_works_at_once(guessing_limit, anonymous):
    with time_machine.travel(START, tick=False):
        for n in range(10):
            guess(anonymous, key=f"guess-{n}")
        assert guess(anonymous).status_code == 429
        assert guess(anonymous, key=ADMIN_KEY).status_code == 200
        assert guess(anonymous, key=READ_KEY).status_code == 200


def test_other_addresses_are_not_blocked(guessing_limit, anonymous):
    with time_machine.travel(START, tick=False):
        for n in range(10):
            guess(anonymous, key=f"guess-{n}")
        assert guess(anonymous, address="203.0.113.9").status_code == 401


def test_failures_are_forgiven_at_the_configured_rate(guessing_limit, anonymous):
    with time_machine.travel(START, tick=False) as clock:
        for n in range(6):
            guess(anonymous, key=f"guess-{n}")
        assert guess(anonymous).status_code == 429
        clock.shift(timedelta(seconds=10))
        assert guess(anonymous).status_code == 401
        assert guess(anonymous).status_code == 429
