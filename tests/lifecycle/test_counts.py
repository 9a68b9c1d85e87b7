"""The stored counts (notification_counts, kept by triggers on PostgreSQL) always equal a recount of the events:
after every kind of state change, under concurrent workers and operators, and after a repair."""
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from notifications.engine import passes, upkeep
from notifications.models import NotificationCount, NotificationEvent
from notifications.operations.events import mark_read, mark_read_events, requeue_event, requeue_events
from notifications.queries import counts
from notifications.queries.summary import stats_summary
from tests.deliveries import deliver_now
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, fail_until_dead, put_in_state
from tests.receivers import Reply

pytestmark = pytest.mark.postgres


def assert_counts_exact():
    stored = counts.by_group()
    assert stored == NotificationEvent.objects.count_by_group()
    return stored


def test_every_kind_of_state_change_keeps_the_counts_exact(failing_webhook, make_event, settings):
    events = [make_event(channel="Webhook") for _ in range(6)]
    assert_counts_exact()

    fail_until_dead(events[0])  # the engine's passes: all six pending → failed → … → dead
    assert_counts_exact()

    failing_webhook.reply_with(Reply())
    requeue_event(events[1].id, OPERATOR, now=T0 + 10 * MINUTE)
    assert deliver_now(events[1].id, now=T0 + 10 * MINUTE) == "sent"
    assert_counts_exact()

    mark_read(events[1].id, OPERATOR)
    mark_read_events(OPERATOR, filters={"status": "dead", "channel": "Webhook"}, now=T0 + 20 * MINUTE)
    assert_counts_exact()

    requeue_events(OPERATOR, ids=[events[2].id, events[3].id], now=T0 + 30 * MINUTE)
    put_in_state(events[3], "failed")
    assert_counts_exact()

    NotificationEvent.objects.filter(id=events[4].id).delete()
    with connection.cursor() as cursor:  # plain SQL with certctl's columns, as its tests and imports write
        cursor.execute(
            "INSERT INTO notification_events (id, type, channel, recipient, message) VALUES "
            "('notif-sql-1', 'Revocation', 'Email', 'ops@example.com', 'revoked')"
        )
    stored = assert_counts_exact()

    upkeep.fold_counts()
    assert counts.by_group() == stored
    assert NotificationCount.objects.count() == len(stored)
    assert stats_summary(now=T0)["notifications_total"] == NotificationEvent.objects.count()


def test_a_purge_keeps_the_counts_exact(make_event, settings):
    old = [make_event() for _ in range(3)]
    for event in old:
        put_in_state(event, "sent", now=T0 - timedelta(days=100))
    upkeep.fold_delivery_totals(now=T0)

    report = upkeep.purge(timedelta(days=90), now=T0)

    assert report.events == 3
    assert assert_counts_exact() == {}


def _worker(target, start, errors):
    try:
        start.wait(timeout=30)
        target()
    except Exception as exc:  # reported by the test
        errors.append(exc)
    finally:
        connection.close()


def test_concurrent_workers_and_operators_keep_the_counts_exact(transactional_db, webhook, settings):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 4
    NotificationEvent.objects.bulk_create(
        NotificationEvent(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}")
        for n in range(300)
    )
    dead = NotificationEvent.objects.bulk_create(
        NotificationEvent(
            type="ExpirationWarning", channel="Slack", recipient="#ops", message=f"dead {n}", status="dead",
            retry_count=5, cause="", cause_kind="transient",
        )
        for n in range(300)
    )

    def sweep():
        while passes.process_pending(now=T0, limit=25).claimed:
            pass

    def requeue_in_parts():
        for start in range(0, len(dead), 50):
            requeue_events(OPERATOR, ids=[event.id for event in dead[start : start + 50]], now=T0)

    def dismiss_in_parts():
        for start in range(0, len(dead), 30):
            mark_read_events(OPERATOR, ids=[event.id for event in dead[start : start + 30]])

    start, errors = threading.Barrier(4), []
    threads = [
        threading.Thread(target=_worker, args=(target, start, errors))
        for target in (sweep, sweep, requeue_in_parts, dismiss_in_parts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [thread for thread in threads if thread.is_alive()] == [], "a worker was still running after 120 s"
    assert errors == []
    upkeep.fold_counts()
    stored = assert_counts_exact()
    assert sum(stored.values()) == 600


def test_stats_recount_repairs_wrong_counts(make_event):
    make_event(channel="Webhook")
    make_event(channel="Webhook")
    NotificationCount.objects.create(channel="Webhook", status="pending", unread=True, events=5)
    NotificationCount.objects.create(channel="Email", status="dead", unread=False, events=1)
    assert stats_summary()["notifications_pending"] == 7

    output = _call("stats", "--recount")

    assert "repaired Webhook pending unread: was 7, counted 2" in output
    assert "repaired Email dead read: was 1, counted 0" in output
    assert "recounted: 2 stored counts were wrong and are repaired" in output
    assert_counts_exact()
    assert stats_summary()["notifications_pending"] == 2
    assert "recounted: every stored count was right" in _call("stats", "--recount")


def _call(*args):
    from io import StringIO

    out = StringIO()
    call_command("notifications", *args, stdout=out)
    return out.getvalue()
