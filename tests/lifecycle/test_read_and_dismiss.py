"""certctl's view of acknowledgement (DESIGN §5 "Read and dismiss") in services: rows written by plain SQL,
mark read never cancelling delivery, requeue making an event unread, and bulk mark read."""
import logging

import pytest
from django.db import connection
from django.utils import timezone

from notifications.errors import InvalidInput
from notifications.models import NotificationEvent, OperatorAction
from notifications.operations.events import BulkReadResult, mark_read, mark_read_events, requeue_event, requeue_events
from notifications.queries.events import get_event
from notifications.queries.summary import stats_summary
from tests.deliveries import deliver_now
from tests.lifecycle.conftest import OPERATOR, T0, put_in_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_event(make_event):
    def make():
        return put_in_state(make_event(), "dead")

    return make


def test_a_row_inserted_by_sql_with_certctl_columns_only_is_a_pending_event(webhook):
    """certctl's tests and data migrations insert without created_at, updated_at, status or retry_count."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notification_events (id, type, certificate_id, channel, recipient, message) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            ["certctl-1", "ExpirationWarning", "mc-1", "Webhook", "ops@example.com", "api.example.com expires"],
        )
        cursor.execute(
            "INSERT INTO notification_events (id, type, channel, recipient, message, sent_at, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            ["certctl-2", "RenewalSuccess", "Email", "ops@example.com", "renewed", timezone.now(), "sent"],
        )
    event = NotificationEvent.objects.get(id="certctl-1")
    assert (event.status, event.retry_count, event.read_at) == ("pending", 0, None)
    assert abs((timezone.now() - event.created_at).total_seconds()) < 60
    assert event.updated_at is not None
    assert NotificationEvent.objects.get(id="certctl-2").status == "sent"
    # The engine takes such a row like any other.
    assert deliver_now("certctl-1") == "sent"
    assert len(webhook.requests) == 1


def test_mark_read_never_cancels_a_pending_delivery(webhook, make_event):
    event = make_event()
    mark_read(event.id, OPERATOR)
    assert deliver_now(event.id) == "sent"
    event.refresh_from_db()
    assert (event.status, event.listed_status, event.read_at is not None) == ("sent", "read", True)
    assert len(webhook.requests) == 1


@pytest.mark.parametrize("bulk", [False, True])
def test_requeue_makes_a_dismissed_event_unread_again(bulk, dead_event):
    event = dead_event()
    mark_read(event.id, OPERATOR)
    if bulk:
        assert requeue_events(OPERATOR, filters={"status": "read"}).requeued == 1
    else:
        requeue_event(event.id, OPERATOR)
    event.refresh_from_db()
    assert (event.status, event.read_at, event.listed_status) == ("pending", None, "pending")


def test_bulk_mark_read_by_filter_counts_and_records_each_event_once(make_event, dead_event, caplog):
    dead = [dead_event() for _ in range(3)]
    already = dead_event()
    mark_read(already.id, OPERATOR)
    pending = make_event()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="notifications.services"):
        result = mark_read_events(OPERATOR, filters={"delivery_status": "dead"}, now=T0)
    assert (result.marked_read, result.skipped, result.dismissed) == (3, 1, 3)
    [summary] = [r for r in caplog.records if "bulk mark read" in r.getMessage()]
    assert summary.getMessage() == "bulk mark read by alice via api: 3 marked read (3 dead ones dismissed), 1 skipped"
    assert (summary.marked_read, summary.dismissed) == (3, 3)
    dismissed = NotificationEvent.objects.filter(id__in=[e.id for e in dead])
    assert set(dismissed.values_list("read_at", "updated_at")) == {(T0, T0)}
    assert sum("marked event" in r.getMessage() for r in caplog.records) == 0  # one summary line, not one per event
    actions = OperatorAction.objects.filter(bulk=True)
    assert sorted(a.event_id for a in actions) == sorted(e.id for e in dead)
    assert {(a.action, a.previous_status, a.actor, a.source) for a in actions} == {
        ("mark_read", "dead", "alice", "api")
    }
    assert get_event(pending.id).read_at is None
    assert stats_summary()["notifications_dead_unacknowledged"] == 0
    again = mark_read_events(OPERATOR, filters={"delivery_status": "dead"})
    assert (again.marked_read, again.skipped) == (0, 4)


def test_bulk_mark_read_by_ids_skips_unknown_and_read_ones(make_event):
    first, second = make_event(), make_event()
    mark_read(second.id, OPERATOR)
    result = mark_read_events(OPERATOR, ids=[first.id, second.id, "notif-unknown", first.id])
    assert (result.marked_read, result.skipped) == (1, 2)
    assert mark_read_events(OPERATOR, ids=[]) == BulkReadResult(0, 0)


def test_bulk_filters_follow_certctl_status_meaning(dead_event):
    unread_dead, read_dead = dead_event(), dead_event()
    mark_read(read_dead.id, OPERATOR)
    assert requeue_events(OPERATOR, filters={"status": "dead"}).requeued == 1
    assert (get_event(unread_dead.id).status, get_event(read_dead.id).status) == ("pending", "dead")


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"status": "archived"}, "status"), ({"delivery_status": "read"}, "delivery_status"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bulk_filters_with_unknown_names_or_values_are_refused(filters, field):
    with pytest.raises(InvalidInput) as refused:
        mark_read_events(OPERATOR, filters=filters)
    assert field in refused.value.errors
