"""DESIGN §2's state machine, transition by transition, with real deliveries to a local receiver and a fixed clock."""
from datetime import timedelta

import pytest

from notifications.engine import passes
from notifications.queries.events import retry_display
from tests.deliveries import deliver_now
from tests.lifecycle.conftest import MINUTE, T0, fail_until_dead, reload
from tests.receivers import Reply

pytestmark = pytest.mark.django_db


def test_pending_delivered_becomes_sent(webhook, make_event):
    event = make_event()

    report = passes.process_pending(now=T0)

    event = reload(event)
    assert report.claimed == 1
    assert (event.status, event.retry_count, event.sent_at, event.next_retry_at) == ("sent", 0, T0, None)
    assert event.claimed_until is None
    assert event.claim_token is None
    [attempt] = event.attempts.all()
    assert (attempt.number, attempt.outcome, attempt.http_status, attempt.resulting_status) == (
        1, "success", 200, "sent",
    )
    assert [r.headers["X-Certctl-Event-ID"] for r in webhook.requests] == [event.id]


def test_first_failure_is_failed_with_a_retry_one_minute_later(failing_webhook, make_event):
    event = make_event()

    passes.process_pending(now=T0)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at) == ("failed", 1, T0 + MINUTE)
    assert event.last_error == "Webhook receiver answered HTTP 500: receiver down"
    assert event.sent_at is None
    [attempt] = event.attempts.all()
    assert (attempt.outcome, attempt.http_status, attempt.resulting_status) == ("transient_failure", 500, "failed")


def test_waits_are_1_2_4_8_minutes_and_the_fifth_failure_is_dead(failing_webhook, make_event):
    event, waits = fail_until_dead(make_event())

    assert waits == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert (event.status, event.retry_count, event.next_retry_at) == ("dead", 5, None)
    assert event.last_error == "Webhook receiver answered HTTP 500: receiver down"
    attempts = list(event.attempts.all())
    assert [a.number for a in attempts] == [1, 2, 3, 4, 5]
    assert [a.resulting_status for a in attempts] == ["failed"] * 4 + ["dead"]
    assert len(failing_webhook.requests) == 5


def test_a_failed_event_is_not_retried_before_it_is_due(failing_webhook, make_event):
    event = make_event()
    passes.process_pending(now=T0)

    early = T0 + MINUTE - timedelta(seconds=1)
    assert passes.retry_sweep(now=early).claimed == 0
    assert passes.process_pending(now=early).claimed == 0
    assert deliver_now(event.id, now=early) is None
    assert len(failing_webhook.requests) == 1
    assert reload(event).retry_count == 1

    assert passes.retry_sweep(now=T0 + MINUTE).claimed == 1
    assert len(failing_webhook.requests) == 2
    assert reload(event).retry_count == 2


def test_success_on_a_retry_keeps_retry_count_and_clears_next_retry_at(webhook, make_event):
    webhook.reply_with(Reply(status=500), Reply(status=502), Reply(status=200))
    event = make_event()
    passes.process_pending(now=T0)
    passes.retry_sweep(now=T0 + MINUTE)
    delivered_at = T0 + 3 * MINUTE

    passes.retry_sweep(now=delivered_at)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at, event.sent_at) == ("sent", 2, None, delivered_at)
    assert retry_display(event) == "Retry 2/5"
    assert [a.outcome for a in event.attempts.all()] == ["transient_failure", "transient_failure", "success"]


def test_the_cap_holds_when_base_and_max_attempts_are_raised(failing_webhook, make_event, settings):
    settings.CERTCTL_NOTIFICATION_BACKOFF_BASE = timedelta(minutes=10)
    settings.CERTCTL_NOTIFICATION_BACKOFF_CAP = timedelta(minutes=30)
    settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS = 7

    event, waits = fail_until_dead(make_event())

    assert waits == [timedelta(minutes=m) for m in (10, 20, 30, 30, 30, 30)]
    assert (event.status, event.retry_count) == ("dead", 7)
    assert retry_display(event) == "Retry 7/7"


def test_retry_after_from_the_receiver_pushes_the_retry_out(webhook, make_event):
    webhook.reply_with(Reply(status=503, headers={"Retry-After": "600"}))
    event = make_event()

    passes.process_pending(now=T0)

    assert reload(event).next_retry_at == T0 + timedelta(minutes=10)


def test_a_permanent_failure_goes_straight_to_dead(webhook, make_event):
    webhook.reply_with(Reply(status=404, body="no such endpoint"))
    event = make_event()

    passes.process_pending(now=T0)
    passes.retry_sweep(now=T0 + timedelta(days=1))

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at) == ("dead", 1, None)
    assert event.last_error == "Webhook receiver answered HTTP 404: no such endpoint"
    assert [a.outcome for a in event.attempts.all()] == ["permanent_failure"]
    assert len(webhook.requests) == 1


def test_several_events_are_delivered_in_one_pass_inside_a_transaction(webhook, make_event, settings):
    """The `db` fixture wraps the test in a transaction; delivery threads with their own connections
    could not see its uncommitted claims (on SQLite: "database table is locked")."""
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 8
    events = [make_event(message=f"certificate {n} expires soon") for n in range(5)]

    report = passes.process_pending(now=T0)

    assert report.claimed == 5
    assert report.outcomes == {"sent": 5}
    assert {reload(e).status for e in events} == {"sent"}
    assert sorted(r.headers["X-Certctl-Event-ID"] for r in webhook.requests) == sorted(e.id for e in events)
