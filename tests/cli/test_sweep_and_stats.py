"""`notifications sweep` delivers now, without a cluster; `notifications stats` counts like the REST summary."""
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from notifications.engine import passes
from notifications.models import DestinationState, NotificationEvent
from notifications.queries.events import get_event
from notifications.queries.summary import stats_summary
from notifications.serializers import StatsSummarySerializer
from tests.cli.conftest import MakeEvent, cli
from tests.deliveries import state_of
from tests.receivers import Receiver, Reply

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
API_KEY = "cli-test-reader-7c41"


def test_sweep_delivers_every_pending_event_once_to_the_receiver(webhook: Receiver, make_event: MakeEvent) -> None:
    events = [make_event(channel="Webhook", message=f"event {n}") for n in range(3)]

    run = cli("sweep")

    assert "sweep: 3 claimed (pending and due retries): 3 sent, 0 failed, 0 dead" in run.out
    delivered = sorted(request.headers["X-Certctl-Event-ID"] for request in webhook.requests)
    assert delivered == sorted(event.id for event in events)
    assert set(NotificationEvent.objects.values_list("status", flat=True)) == {"sent"}


def test_sweep_runs_retries_that_are_due_and_leaves_the_others(webhook: Receiver, make_event: MakeEvent) -> None:
    webhook.reply_with(Reply(status=500))
    with time_machine.travel(T0, tick=False):
        due, not_due = make_event(channel="Webhook"), make_event(channel="Webhook")
        passes.process_pending()
    NotificationEvent.objects.filter(id=not_due.id).update(next_retry_at=T0 + timedelta(minutes=30))
    webhook.reply_with(Reply(status=200))

    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        run = cli("sweep")

    assert "sweep: 1 claimed (pending and due retries): 1 sent, 0 failed, 0 dead" in run.out
    assert Counter(r.headers["X-Certctl-Event-ID"] for r in webhook.requests) == {due.id: 2, not_due.id: 1}
    assert get_event(due.id).status == "sent"
    assert get_event(not_due.id).status == "failed"


def test_sweep_counts_failures_and_dead_letters(webhook: Receiver, make_event: MakeEvent) -> None:
    webhook.reply_with(Reply(status=503))
    make_event(channel="Webhook")
    make_event(channel="Teams")  # not configured: dead at once

    run = cli("sweep")

    assert "sweep: 2 claimed (pending and due retries): 0 sent, 1 failed, 1 dead" in run.out


@pytest.mark.timeout(60)
def test_sweep_returns_once_a_down_channels_events_wait_for_its_breakers_probe(
    webhook: Receiver, make_event: MakeEvent, settings: Settings
) -> None:
    settings.CERTCTL_CHANNEL_BREAKER_FAILURES, settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS = 5, 3
    settings.CERTCTL_CHANNEL_BREAKER_PROBE = timedelta(seconds=2)
    webhook.reply_with(Reply(status=503))
    for n in range(5):
        make_event(channel="Webhook", message=f"event {n}")
    assert "sweep: 5 claimed (pending and due retries): 0 sent, 5 failed, 0 dead" in cli("sweep").out
    assert state_of("Webhook").state == "open"
    # A minute on, the receiver still down: the retries and the breaker's probe are due.
    NotificationEvent.objects.update(next_retry_at=timezone.now())
    DestinationState.objects.update(next_probe_at=timezone.now())

    run = cli("sweep")

    # The failed probe moves the retries to the next probe, 2 s away: always "due within the linger", so the sweep
    # used to stay probe after probe until its start window closed, minutes later.
    assert "sweep: 1 claimed (pending and due retries): 0 sent, 1 failed, 0 dead" in run.out
    assert state_of("Webhook").state == "open"
    assert len(webhook.requests) == 6


def test_sweep_with_nothing_to_do(db: None) -> None:
    run = cli("sweep")

    assert "sweep: 0 claimed (pending and due retries): 0 sent, 0 failed, 0 dead" in run.out


def test_stats_json_has_the_service_and_rest_field_names_and_counts(
    webhook: Receiver, make_event: MakeEvent, settings: Settings
) -> None:
    webhook.reply_with(Reply(status=500))
    with time_machine.travel(T0, tick=False):
        make_event(channel="Webhook")
        make_event(channel="Slack")
        passes.process_pending()
        make_event(channel="Webhook")
    settings.CERTCTL_API_KEYS_NAMED = f"cli-test:{API_KEY}"

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        stats = cli("stats", "--json").json()
        rest = APIClient(headers={"Authorization": f"Bearer {API_KEY}"}).get("/api/v1/stats/summary").json()

    assert set(stats) == set(stats_summary()) == set(StatsSummarySerializer().fields)
    assert stats == rest
    assert stats == {
        "notifications_total": 3,
        "notifications_pending": 1,
        "notifications_sent": 0,
        "notifications_failed": 1,
        "notifications_dead": 1,
        "notifications_dead_unacknowledged": 1,
        "notifications_unread": 3,
        "oldest_due_retry_at": "2026-11-28T12:01:00Z",
        "oldest_due_retry_age_seconds": 240,
        "completed_at": "2026-11-28T12:05:00Z",
    }


def test_stats_table(make_event: MakeEvent) -> None:
    make_event()
    with time_machine.travel(T0, tick=False):
        run = cli("stats")

    header, _, *rows = run.out.splitlines()
    assert header.split() == ["Notifications", "Count"]
    counts = dict(row.rsplit(None, 1) for row in rows)
    assert counts == {
        "pending": "1", "sent": "0", "failed": "0", "dead": "0", "dead, not dismissed": "0", "total": "1",
        "unread": "1",
        "oldest due retry": "none",
    }
