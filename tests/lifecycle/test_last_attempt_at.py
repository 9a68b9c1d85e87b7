"""last_attempt_at: written with every recorded attempt, and filled in for events attempted before the column
existed."""
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from notifications.models import NotificationEvent
from notifications.notifiers import DeliveryResult
from tests.deliveries import claim, record

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
BEFORE = [("notifications", "0005_channel_state")]
AFTER = [("notifications", "0006_last_attempt_at")]


def test_every_recorded_attempt_sets_it(make_event):
    event = make_event()
    record(claim(event.id, now=T0), DeliveryResult.transient("HTTP 503"), T0)
    assert NotificationEvent.objects.get(id=event.id).last_attempt_at == T0
    retry_at = NotificationEvent.objects.get(id=event.id).next_retry_at
    record(claim(event.id, now=retry_at), DeliveryResult.success(http_status=200), retry_at)
    assert NotificationEvent.objects.get(id=event.id).last_attempt_at == retry_at


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_it_from_the_latest_attempt():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        Event = old.get_model("notifications", "NotificationEvent")
        Attempt = old.get_model("notifications", "NotificationAttempt")
        tried = Event.objects.create(
            id="notif-tried", type="ExpirationWarning", channel="Webhook", recipient="r", message="m", status="dead",
            attempt_count=2,
        )
        Event.objects.create(id="notif-never", type="ExpirationWarning", channel="Webhook", recipient="r", message="m")
        for number, started in ((1, T0), (2, T0 + timedelta(minutes=1))):
            Attempt.objects.create(
                event=tried, number=number, started_at=started, duration_ms=5, outcome="permanent_failure"
            )
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        # Only that column: the model has columns of later migrations.
        last_attempts = dict(NotificationEvent.objects.values_list("id", "last_attempt_at"))
        assert last_attempts == {"notif-tried": T0 + timedelta(minutes=1), "notif-never": None}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
