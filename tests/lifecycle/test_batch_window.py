"""A pass starts no delivery that could outlast its task: the rest of the batch goes back to the queue at once."""
import ast
import logging
import time
from datetime import timedelta

import pytest
from django.core.management import call_command

from notifications.engine import claims, passes
from notifications.engine.report import RELEASED
from notifications.models import NotificationEvent, Status
from notifications.operations.events import create_event
from tests.lifecycle.conftest import T0
from tests.receivers import Reply

TOO_LATE = -1.0  # a deadline already passed, relative to time.monotonic()


def make_pending(count):
    return [
        create_event(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}")[0]
        for n in range(count)
    ]


def test_the_window_leaves_room_for_one_slow_delivery_before_the_task_timeout(settings):
    assert settings.Q_CLUSTER["timeout"] == 270  # 90 % of the 5-minute lease
    assert claims.start_window() == 270 - 5 - 15


def test_a_pass_starts_deliveries_for_its_maximum_duration_and_never_beyond_the_start_window(settings):
    settings.CERTCTL_NOTIFICATION_PASS_MAX_DURATION = timedelta(minutes=2)
    assert claims.pass_window() == 120
    settings.CERTCTL_NOTIFICATION_PASS_MAX_DURATION = timedelta(minutes=10)
    assert claims.pass_window() == claims.start_window() == 250


def test_events_not_started_in_time_are_released_and_taken_by_the_next_pass(db, webhook, settings):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 1
    make_pending(3)
    claimed = claims.claim_due_events("pending", now=T0)
    results = passes.deliver_batch(claimed, now=T0, deadline=time.monotonic() + TOO_LATE)

    assert results == [Status.SENT, RELEASED, RELEASED]
    assert len(webhook.requests) == 1
    released = NotificationEvent.objects.exclude(id=claimed[0].id)
    assert [(e.status, e.claim_token, e.claimed_until, e.attempts.count()) for e in released] == [
        (Status.PENDING, None, None, 0), (Status.PENDING, None, None, 0)
    ]
    # Not at lease expiry: the very next pass delivers them.
    assert passes.process_pending(now=T0).claimed == 2
    assert NotificationEvent.objects.filter(status=Status.SENT).count() == 3
    assert len(webhook.requests) == 3


def test_releasing_the_late_events_of_a_claim_leaves_its_sends_in_flight_their_claim(db, webhook, settings):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 1
    webhook.reply_with(Reply(delay=0.5))  # still in flight when the late ones are given back
    make_pending(3)
    claimed = claims.claim_due_events("pending", now=T0)
    assert len({event.claim_token for event in claimed}) == 1

    results = passes.deliver_batch(claimed, now=T0, deadline=time.monotonic() + TOO_LATE)

    assert results == [Status.SENT, RELEASED, RELEASED]
    assert NotificationEvent.objects.get(id=claimed[0].id).status == Status.SENT


def test_a_release_does_not_touch_an_event_another_worker_now_holds(db, settings):
    (event,) = make_pending(1)
    (stale,) = claims.claim_due_events("pending", now=T0)
    NotificationEvent.objects.filter(id=event.id).update(claim_token="taken-over")
    assert claims.release_claims([stale]) == 0
    assert NotificationEvent.objects.get(id=event.id).claim_token == "taken-over"


@pytest.mark.postgres
def test_each_delivery_thread_starts_one_event_then_stops_when_late(transactional_db, webhook, settings):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 2
    make_pending(6)
    claimed = claims.claim_due_events("pending", now=T0)
    results = passes.deliver_batch(claimed, now=T0, deadline=time.monotonic() + TOO_LATE)

    assert sorted(map(str, results)) == ["released"] * 4 + ["sent"] * 2
    assert len(webhook.requests) == 2
    assert NotificationEvent.objects.filter(status=Status.PENDING, claim_token=None).count() == 4


def test_sweep_reports_what_it_released(db, webhook, settings, monkeypatch, capsys, caplog):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 1
    make_pending(2)
    monkeypatch.setattr(claims, "start_window", lambda: TOO_LATE)
    with caplog.at_level(logging.INFO, logger="notifications.delivery"):
        call_command("notifications", "sweep")
    out = capsys.readouterr().out
    assert (
        "sweep: 2 claimed (pending and due retries): 1 sent, 0 failed, 0 dead, "
        "1 not started in time and released for the next pass"
    ) in out
    released, summary = [
        r for r in caplog.records if r.name == "notifications.delivery" and not r.getMessage().startswith("attempt ")
    ]
    assert (released.levelname, released.getMessage()) == (
        "WARNING", "1 claimed events not started in time (slow receivers): released for the next pass"
    )
    # The outcomes are printed as a dict, in the order they happened.
    prefix, outcomes = summary.getMessage().split("{")
    assert (summary.levelname, prefix, ast.literal_eval("{" + outcomes), getattr(summary, "pass")) == (
        "INFO", "pending pass: 2 claimed, ", {"sent": 1, "released": 1}, "pending"
    )
