"""Per-key token bucket: CERTCTL_RATE_LIMIT_RPS refill, CERTCTL_RATE_LIMIT_BURST capacity, 429 + Retry-After."""
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from notifications import services
from tests.api.conftest import assert_error

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
    assert services.get_event(dead_event.id).status == "dead"


def test_zero_rate_turns_the_limit_off(settings, admin):
    settings.CERTCTL_RATE_LIMIT_RPS = 0
    settings.CERTCTL_RATE_LIMIT_BURST = 1
    with time_machine.travel(START, tick=False):
        assert {admin.get("/api/v1/stats/summary").status_code for _ in range(5)} == {200}


def test_default_allows_a_burst_of_100(admin):
    with time_machine.travel(START, tick=False):
        statuses = [admin.get("/api/v1/stats/summary").status_code for _ in range(101)]
    assert statuses.count(200) == 100 and statuses[-1] == 429
