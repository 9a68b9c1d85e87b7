"""The delivery engine's own promises: a hanging receiver holds only its share of the slots, outcomes are
written per chunk in two statements, and both ways of applying them agree."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import delivery
from notifications.delivery import Delivery, record_results
from notifications.models import NotificationAttempt, NotificationEvent, Status
from notifications.notifiers import DeliveryResult
from tests.lifecycle.conftest import T0, reload
from tests.receivers import Receiver, Reply


@pytest.fixture
def slow_receiver():
    server = Receiver().start()
    yield server
    server.stop()


def make_pending(channel, count):
    NotificationEvent.objects.bulk_create(
        NotificationEvent(type="ExpirationWarning", channel=channel, recipient="#pki", message=f"{channel} {n}")
        for n in range(count)
    )


@pytest.mark.django_db
def test_a_hanging_receiver_holds_only_its_share_while_another_is_served_at_once(settings, webhook, slow_receiver):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 8
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 4
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(seconds=2)
    settings.CERTCTL_SLACK_WEBHOOK_URL = slow_receiver.url + "/services/T0/B0/slacktoken"
    slow_receiver.reply_with(Reply(delay=4))
    make_pending("Slack", 8)  # older, so claimed first: without the per-destination cap they would take every slot
    make_pending("Webhook", 40)

    report = delivery.process_pending()

    assert report.outcomes == {"sent": 40, "failed": 8}
    slow_attempts = NotificationAttempt.objects.filter(event__channel="Slack")
    first_slow_give_up = min(a.started_at.timestamp() + a.duration_ms / 1000 for a in slow_attempts)
    assert all("no answer within the read timeout" in a.error for a in slow_attempts)
    assert len(webhook.requests) == 40
    # Every fast delivery reached its receiver before the first hanging one was given up.
    assert max(r.received_at for r in webhook.requests) < first_slow_give_up
    assert len(slow_receiver.requests) == 8


def claimed_deliveries(count, result):
    make_pending("Webhook", count)
    events = delivery.claim_due_events("pending", now=T0)
    return [Delivery(event, result, T0, 12, T0 + timedelta(seconds=1)) for event in events]


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_chunk_of_outcomes_is_one_update_and_one_insert():
    deliveries = claimed_deliveries(100, DeliveryResult.success(http_status=200))

    with CaptureQueriesContext(connection) as queries:
        statuses = record_results(deliveries)

    assert statuses == [Status.SENT] * 100
    writes = [q["sql"].split()[0] for q in queries.captured_queries if q["sql"].split()[0] in ("UPDATE", "INSERT")]
    assert writes == ["UPDATE", "INSERT"]
    assert NotificationEvent.objects.filter(status=Status.SENT, attempt_count=1, claim_token=None).count() == 100
    assert NotificationAttempt.objects.filter(number=1, resulting_status=Status.SENT).count() == 100


@pytest.mark.django_db
@pytest.mark.parametrize("apply", ["vendor", "statement per event"])
def test_outcomes_apply_only_under_the_claim_and_number_attempts_after_the_latest(monkeypatch, apply):
    if apply == "statement per event":
        monkeypatch.setattr(delivery, "_apply_postgresql", delivery._apply_each)
    failed, lost, sent = claimed_deliveries(3, DeliveryResult.transient("Webhook receiver answered HTTP 503", http_status=503))
    sent = Delivery(sent.event, DeliveryResult.success(http_status=200), sent.started_at, 5, sent.finished_at)
    NotificationEvent.objects.filter(id=failed.event.id).update(attempt_count=4, retry_count=1)
    failed = Delivery(reload(failed.event), failed.result, failed.started_at, failed.duration_ms, failed.finished_at)
    NotificationEvent.objects.filter(id=lost.event.id).update(claim_token="another-worker", attempt_count=2)

    statuses = record_results([failed, lost, sent])

    assert statuses == [Status.FAILED, None, Status.SENT]
    rows = {e.id: e for e in NotificationEvent.objects.all()}
    assert (rows[failed.event.id].retry_count, rows[failed.event.id].attempt_count) == (2, 5)
    assert rows[failed.event.id].next_retry_at == failed.finished_at + timedelta(minutes=2)
    assert (rows[lost.event.id].status, rows[lost.event.id].claim_token, rows[lost.event.id].attempt_count) == (
        Status.PENDING, "another-worker", 3,
    )
    assert (rows[sent.event.id].status, rows[sent.event.id].sent_at, rows[sent.event.id].claim_token) == (
        Status.SENT, sent.finished_at, None,
    )
    attempts = {(a.event_id, a.number): a.resulting_status for a in NotificationAttempt.objects.all()}
    assert attempts == {(failed.event.id, 5): Status.FAILED, (lost.event.id, 3): None, (sent.event.id, 1): Status.SENT}


def test_a_database_blip_while_recording_is_retried_and_nothing_is_lost(transactional_db, monkeypatch, caplog):
    [sent] = claimed_deliveries(1, DeliveryResult.success(http_status=200))
    real_apply, failures = delivery._apply, []

    def flaky_apply(*args):
        if len(failures) < 2:
            failures.append(1)
            raise delivery.DatabaseError("server closed the connection unexpectedly")
        return real_apply(*args)

    monkeypatch.setattr(delivery, "_apply", flaky_apply)
    monkeypatch.setattr(delivery.time, "sleep", lambda seconds: None)

    assert record_results([sent]) == [Status.SENT]
    assert reload(sent.event).status == Status.SENT
    assert "retrying" in caplog.text
