"""Claims and leases: concurrent workers never send an event twice, a dead worker's event is sent after its lease.

The two-sweep test needs PostgreSQL's row locks; the lease rules hold on every backend.
"""
import threading
from datetime import timedelta

import psycopg
import pytest
from django.db import connection

from notifications.engine import claims, passes
from notifications.engine.recording import record_results
from notifications.engine.sender import Delivery
from notifications.models import NotificationAttempt, NotificationEvent
from notifications.notifiers import DeliveryResult
from tests.deliveries import deliver_now
from tests.lifecycle.conftest import MINUTE, T0, put_in_state, reload

EVENTS = 500


def sweep_until_empty(kind, now, start, errors):
    """One worker: wait for the other, then run passes of 25 until nothing is due; close the thread's connection."""
    run = passes.process_pending if kind == "pending" else passes.retry_sweep
    try:
        start.wait(timeout=30)
        while run(now=now, limit=25).claimed:
            pass
    except Exception as exc:  # reported by the test, which would otherwise only see a missing delivery
        errors.append(exc)
    finally:
        connection.close()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["pending", "retry"])
def test_fault_06_two_concurrent_sweeps_deliver_each_of_500_events_once(transactional_db, webhook, settings, kind):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 4
    due = {}
    if kind == "retry":
        due = dict(status="failed", retry_count=1, next_retry_at=T0 - MINUTE, last_error="HTTP 500")
    NotificationEvent.objects.bulk_create(
        NotificationEvent(
            type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}", **due
        )
        for n in range(EVENTS)
    )
    start, errors = threading.Barrier(2), []
    workers = [threading.Thread(target=sweep_until_empty, args=(kind, T0, start, errors)) for _ in range(2)]

    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert [worker for worker in workers if worker.is_alive()] == [], "a sweep was still running after 120 s"
    assert errors == []
    delivered = [request.headers["X-Certctl-Event-ID"] for request in webhook.requests]
    assert len(delivered) == EVENTS
    assert len(set(delivered)) == EVENTS
    assert NotificationEvent.objects.filter(status="sent").count() == EVENTS
    assert NotificationAttempt.objects.filter(outcome="success").count() == EVENTS
    assert NotificationAttempt.objects.count() == EVENTS


@pytest.mark.postgres
def test_a_claim_skips_rows_another_transaction_has_locked_instead_of_waiting(transactional_db):
    events = NotificationEvent.objects.bulk_create(
        NotificationEvent(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}")
        for n in range(4)
    )
    for age, event in enumerate(reversed(events), start=1):
        NotificationEvent.objects.filter(id=event.id).update(created_at=T0 - age * MINUTE)
    oldest, free = [e.id for e in events[:2]], [e.id for e in events[2:]]
    db = connection.settings_dict
    other_worker = psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None, dbname=db["NAME"]
    )
    try:
        # The other worker is in the middle of its claim: the two oldest rows are locked until it commits.
        other_worker.execute(
            f"SELECT id FROM {NotificationEvent._meta.db_table} WHERE id = ANY(%s) FOR UPDATE", [oldest]
        )
        with connection.cursor() as cursor:
            # A claim that waited for those locks would fail after this, instead of hanging the test.
            cursor.execute("SET lock_timeout = '2s'")
        try:
            claimed = claims.claim_due_events("pending", now=T0, limit=10)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        other_worker.rollback()
        other_worker.close()

    assert [event.id for event in claimed] == free
    assert list(NotificationEvent.objects.filter(id__in=oldest).values_list("claim_token", flat=True)) == [None, None]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["pending", "retry"])
def test_a_dead_workers_claim_is_not_delivered_before_its_lease_expires(webhook, make_event, kind):
    event = make_event()
    if kind == "retry":
        event = put_in_state(event, "failed", now=T0 - 10 * MINUTE)
    run = passes.process_pending if kind == "pending" else passes.retry_sweep

    [claimed] = claims.claim_due_events(kind, now=T0)  # ... and the worker dies before sending
    assert claimed.claimed_until == T0 + timedelta(minutes=5)

    assert run(now=T0 + timedelta(minutes=5)).claimed == 0
    assert deliver_now(event.id, now=T0 + MINUTE) is None
    assert webhook.requests == []

    assert run(now=T0 + timedelta(minutes=5, seconds=1)).claimed == 1
    event = reload(event)
    assert (event.status, event.claimed_until, event.claim_token) == ("sent", None, None)
    assert len(webhook.requests) == 1


@pytest.mark.django_db
def test_a_late_result_from_a_worker_whose_lease_was_taken_over_is_not_applied(webhook, make_event):
    event = make_event()
    [stale] = claims.claim_due_events("pending", now=T0)
    [fresh] = claims.claim_due_events("pending", now=T0 + 6 * MINUTE)
    assert fresh.claim_token != stale.claim_token

    applied = record_results([
        Delivery(stale, DeliveryResult.transient("Webhook receiver answered HTTP 500"), T0, 360_000, T0 + 6 * MINUTE)
    ])[0]

    assert applied is None
    event = reload(event)
    assert (event.status, event.retry_count, event.last_error, event.claim_token) == (
        "pending", 0, None, fresh.claim_token,
    )

    assert passes.deliver_batch([fresh], now=T0 + 7 * MINUTE) == ["sent"]
    event = reload(event)
    assert (event.status, event.retry_count) == ("sent", 0)
    assert [(a.outcome, a.resulting_status) for a in event.attempts.all()] == [
        ("transient_failure", None),
        ("success", "sent"),
    ]
    assert len(webhook.requests) == 1


@pytest.mark.django_db
def test_a_late_success_from_a_worker_whose_lease_was_taken_over_does_not_mark_sent(make_event):
    event = make_event()
    [stale] = claims.claim_due_events("pending", now=T0)
    [fresh] = claims.claim_due_events("pending", now=T0 + 6 * MINUTE)

    applied = record_results([Delivery(stale, DeliveryResult.success(http_status=200), T0, 1, T0 + 6 * MINUTE)])[0]

    assert applied is None
    event = reload(event)
    assert (event.status, event.sent_at, event.claim_token) == ("pending", None, fresh.claim_token)
