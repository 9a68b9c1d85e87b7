"""Retention: old sent events go with their attempts and operator actions; nothing else goes by age; the /metrics
delivery totals and the counts do not move."""
import time
from datetime import timedelta

import pytest
from django_q.models import Schedule

from notifications.engine import upkeep
from notifications.metrics import DatabaseCollector
from notifications.models import MetricsFold, NotificationAttempt, NotificationEvent, OperatorAction
from notifications.operations.events import mark_read
from notifications.queries import counts
from notifications.queries.summary import stats_summary
from notifications.schedules import ensure_schedules
from tests.deliveries import deliver_now
from tests.lifecycle.conftest import OPERATOR, T0, put_in_state
from tests.receivers import Reply

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
NOW = T0 + 200 * DAY


@pytest.fixture
def history(webhook, make_event):
    """Sent 100 and 10 days before NOW (each with its attempt, one read by an operator), and events of every
    other state 100 days old."""
    webhook.reply_with(Reply())
    events = {}
    for name, age in (("old_sent", 100), ("old_sent_read", 100), ("recent_sent", 10)):
        event = make_event(message=name)
        assert deliver_now(event.id, now=NOW - age * DAY) == "sent"
        events[name] = event
    mark_read(events["old_sent_read"].id, OPERATOR)
    for status in ("dead", "failed", "pending"):
        events[f"old_{status}"] = put_in_state(make_event(message=status), status, now=NOW - 100 * DAY)
    upkeep.fold_delivery_totals(now=NOW)
    return events


def delivery_series():
    """The /metrics delivery counters and histograms."""
    return {
        (found.name, tuple(sorted(found.labels.items()))): found.value
        for family in DatabaseCollector().collect() if family.type in ("counter", "histogram")
        for found in family.samples
    }


def remaining():
    return set(NotificationEvent.objects.values_list("message", flat=True))


def test_purge_removes_old_sent_events_with_their_attempts_and_actions_and_nothing_else(history):
    # Only the status decides: a dead event with a sent_at (certctl rows can carry one) stays.
    NotificationEvent.objects.filter(id=history["old_dead"].id).update(sent_at=NOW - 100 * DAY)
    totals = delivery_series()

    report = upkeep.purge(timedelta(days=90), now=NOW)

    assert (report.events, report.attempts, report.operator_actions) == (2, 2, 1)
    assert remaining() == {"recent_sent", "dead", "failed", "pending"}
    assert not NotificationAttempt.objects.filter(event_id=history["old_sent"].id).exists()
    assert not OperatorAction.objects.filter(event_id=history["old_sent_read"].id).exists()
    assert NotificationAttempt.objects.filter(event_id=history["recent_sent"].id).count() == 1
    assert delivery_series() == totals
    assert counts.by_group() == NotificationEvent.objects.count_by_group()
    assert stats_summary(now=NOW)["notifications_sent"] == 1


def test_a_dry_run_counts_and_deletes_nothing(history):
    report = upkeep.purge(timedelta(days=90), now=NOW, dry_run=True)

    assert (report.events, report.attempts, report.operator_actions) == (2, 2, 1)
    assert len(remaining()) == 6


def test_attempts_not_yet_folded_into_the_metrics_totals_are_kept_until_they_are(history):
    MetricsFold.objects.update(attempts_folded_before=NOW - 20 * DAY)

    report = upkeep.purge(timedelta(days=5), now=NOW)

    assert report.sent_before == NOW - 20 * DAY
    assert "recent_sent" in remaining()  # sent 10 days ago, but its attempt is not in the totals yet
    assert report.events == 2


def test_nothing_is_purged_before_the_first_fold(history):
    MetricsFold.objects.all().delete()

    report = upkeep.purge(timedelta(days=90), now=NOW)

    assert (report.sent_before, report.events) == (None, 0)
    assert len(remaining()) == 6


def test_the_purge_goes_in_chunks_and_stops_at_its_deadline(history, monkeypatch):
    monkeypatch.setattr(upkeep, "PURGE_CHUNK", 1)

    stopped = upkeep.purge(timedelta(days=90), now=NOW, deadline=time.monotonic() - 1)
    assert (stopped.events, stopped.finished) == (0, False)

    report = upkeep.purge(timedelta(days=90), now=NOW)
    assert (report.events, report.finished) == (2, True)


def test_housekeeping_folds_then_purges_with_the_configured_retention(history, settings):
    settings.CERTCTL_NOTIFICATION_RETENTION = timedelta(days=90)

    result = upkeep.housekeeping(now=NOW + DAY)

    assert result["purge"]["events"] == 2
    assert remaining() == {"recent_sent", "dead", "failed", "pending"}


def test_a_retention_of_0_keeps_everything(history, settings):
    settings.CERTCTL_NOTIFICATION_RETENTION = timedelta(0)

    result = upkeep.housekeeping(now=NOW + 1000 * DAY)

    assert "purge" not in result
    assert len(remaining()) == 6


def test_housekeeping_is_scheduled(settings):
    settings.CERTCTL_NOTIFICATION_HOUSEKEEPING_INTERVAL = timedelta(minutes=5)
    ensure_schedules()

    schedule = Schedule.objects.get(name="certctl: notification housekeeping")
    assert (schedule.func, schedule.minutes) == ("notifications.tasks.housekeeping", 5)
