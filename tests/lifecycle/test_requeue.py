"""Requeue, one by one and in bulk: who may be requeued, what is reset and what is kept."""
import logging
from collections.abc import Callable

import psycopg
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.engine import claims, passes
from notifications.errors import EventNotFound, InvalidInput, RequeueRefused
from notifications.filtersets import FILTER_NAMES
from notifications.models import NotificationEvent, OperatorAction
from notifications.operations.events import create_event, mark_read, requeue_event, requeue_events
from notifications.queries.events import BulkPreview, get_event, preview_requeue
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, fail_until_dead, put_in_state, reload
from tests.receivers import Reply

pytestmark = pytest.mark.django_db

LATER = T0 + 90 * MINUTE


def snapshot(event):
    return NotificationEvent.objects.filter(id=event.id).values().get()


@pytest.fixture(params=["as on this database", "as on SQLite"])
def bulk_requeue(request, monkeypatch):
    """A bulk requeue as this database runs it (one statement on PostgreSQL) and as SQLite runs it (chunked
    statements), on PostgreSQL too, so that a mutation run on PostgreSQL tests SQLite's way as well."""
    if request.param == "as on SQLite":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    return requeue_events


def test_requeue_of_dead_resets_counters_keeps_history_and_records_who(failing_webhook, make_event):
    event, _ = fail_until_dead(make_event())
    assert event.status == "dead"

    with time_machine.travel(LATER, tick=False):
        requeue_event(event.id, OPERATOR, now=LATER)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at, event.last_error) == ("pending", 0, None, None)
    assert event.attempts.count() == 5
    [action] = event.operator_actions.all()
    assert (action.action, action.actor, action.source, action.bulk) == ("requeue", "alice", "api", False)
    assert (action.previous_status, action.created_at) == ("dead", LATER)

    failing_webhook.reply_with(Reply(status=200))
    passes.process_pending(now=LATER)
    event = reload(event)
    assert (event.status, event.retry_count) == ("sent", 0)
    assert [a.number for a in event.attempts.all()] == [1, 2, 3, 4, 5, 6]


def test_requeue_of_failed_clears_the_scheduled_retry(failing_webhook, make_event):
    event = make_event()
    passes.process_pending(now=T0)

    requeue_event(event.id, OPERATOR, now=T0 + MINUTE / 2)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at, event.last_error) == ("pending", 0, None, None)
    assert event.updated_at == T0 + MINUTE / 2
    assert event.attempts.count() == 1
    assert event.operator_actions.get().previous_status == "failed"


@pytest.mark.parametrize("status", ["sent", "pending"])
def test_requeue_of_sent_or_pending_is_refused_and_changes_nothing(make_event, status):
    event = put_in_state(make_event(), status)
    before = snapshot(event)

    with pytest.raises(RequeueRefused) as refused:
        requeue_event(event.id, OPERATOR, now=LATER)

    assert (refused.value.event_id, refused.value.current_status) == (event.id, status)
    assert refused.value.message == (
        f"notification {event.id} is {status}; only failed or dead notifications can be requeued"
    )
    assert snapshot(event) == before
    assert not OperatorAction.objects.exists()


def test_requeue_of_unknown_id_raises_event_not_found(db):
    with pytest.raises(EventNotFound) as missing:
        requeue_event("notif-nope", OPERATOR)

    assert (missing.value.message, missing.value.event_id) == ("notification notif-nope not found", "notif-nope")


@pytest.mark.parametrize("event_id", ["notif-\x00", "n" * 65])
@pytest.mark.parametrize("action", [get_event, requeue_event, mark_read])
def test_an_id_no_event_can_have_is_not_found(db, action, event_id):
    """A NUL would be a database error on PostgreSQL (a 500), an id past the column's length one on some engines."""
    arguments = (event_id,) if action is get_event else (event_id, OPERATOR)
    with pytest.raises(EventNotFound) as missing:
        action(*arguments)

    assert missing.value.message == f"notification {event_id} not found"


def test_an_event_with_an_id_of_the_longest_length_is_found_and_requeued(make_event):
    event = put_in_state(make_event(event_id="n" * 64), "dead")

    assert get_event("n" * 64).id == event.id
    assert requeue_event("n" * 64, OPERATOR).status == "pending"


def test_a_requeue_is_logged_with_who_and_the_previous_status(make_event, caplog):
    event = put_in_state(make_event(), "failed")
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="notifications.services"):
        requeue_event(event.id, OPERATOR, now=LATER)

    assert caplog.messages == [f"requeued event {event.id} (was failed) by alice via api"]
    requeued = caplog.records[0]
    assert (requeued.event_id, requeued.status, requeued.previous_status) == (event.id, "pending", "failed")


def test_requeue_while_a_worker_holds_the_event_is_refused_until_the_lease_ends(make_event):
    event = put_in_state(make_event(), "failed", now=T0 - 10 * MINUTE)
    [claimed] = claims.claim_due_events("retry", now=T0)

    with pytest.raises(RequeueRefused) as refused:
        requeue_event(event.id, OPERATOR, now=T0 + MINUTE)
    assert refused.value.message == (
        f"notification {event.id} is being delivered right now; try again after 12:05:00 UTC"
    )
    assert (refused.value.event_id, refused.value.current_status) == (event.id, "failed")
    assert reload(event).claim_token == claimed.claim_token

    after_lease = claimed.claimed_until + MINUTE
    assert requeue_event(event.id, OPERATOR, now=after_lease).status == "pending"


def test_bulk_requeue_by_ids_counts_requeued_and_skipped(make_event, bulk_requeue):
    dead, failed, sent, pending = (put_in_state(make_event(), s) for s in ("dead", "failed", "sent", "pending"))
    untouched = {e.id: snapshot(e) for e in (sent, pending)}

    result = bulk_requeue(
        OPERATOR, ids=[dead.id, failed.id, sent.id, pending.id, "notif-unknown", dead.id, "notif-\x00"]
    )

    assert (result.requeued, result.skipped) == (2, 4)
    assert {reload(e).status for e in (dead, failed)} == {"pending"}
    assert {e.id: snapshot(e) for e in (sent, pending)} == untouched
    actions = OperatorAction.objects.order_by("previous_status")
    assert [(a.event_id, a.previous_status, a.bulk, a.actor) for a in actions] == [
        (dead.id, "dead", True, "alice"),
        (failed.id, "failed", True, "alice"),
    ]


def test_bulk_requeue_by_filter(make_event):
    dead_webhook = [put_in_state(make_event(channel="Webhook"), "dead") for _ in range(2)]
    dead_slack = put_in_state(make_event(channel="Slack"), "dead")
    put_in_state(make_event(channel="Webhook"), "sent")

    result = requeue_events(OPERATOR, filters={"status": "dead", "channel": "Webhook"})

    assert (result.requeued, result.skipped) == (2, 0)
    assert {reload(e).status for e in dead_webhook} == {"pending"}
    assert reload(dead_slack).status == "dead"

    everything_on_webhook = requeue_events(OPERATOR, filters={"channel": "Webhook"})
    assert (everything_on_webhook.requeued, everything_on_webhook.skipped) == (0, 3)


def test_bulk_requeue_refuses_more_than_10000_ids(make_event):
    dead = put_in_state(make_event(), "dead")
    ids = [dead.id] + [f"notif-{n}" for n in range(10_000)]

    with pytest.raises(InvalidInput) as refused:
        requeue_events(OPERATOR, ids=ids)

    assert refused.value.errors == {"ids": "10001 ids given; at most 10000 per call"}
    assert reload(dead).status == "dead"


def test_bulk_requeue_takes_10000_ids(make_event):
    dead = put_in_state(make_event(), "dead")

    result = requeue_events(OPERATOR, ids=[dead.id] + [f"notif-{n}" for n in range(9_999)])

    assert (result.requeued, result.skipped) == (1, 9_999)


@pytest.mark.parametrize(
    ("filters", "errors"),
    [
        ({}, {"ids": f"give a list of ids or at least one filter ({', '.join(FILTER_NAMES)})"}),
        (
            {"channel": "", "status": None},
            {"ids": f"give a list of ids or at least one filter ({', '.join(FILTER_NAMES)})"},
        ),
        ({"recipient": "ops@example.com"}, {"recipient": f"not a notification filter; use {', '.join(FILTER_NAMES)}"}),
    ],
)
def test_bulk_requeue_needs_ids_or_a_known_filter(make_event, filters, errors):
    dead = put_in_state(make_event(), "dead")

    with pytest.raises(InvalidInput) as refused:
        requeue_events(OPERATOR, filters=filters)

    assert refused.value.errors == errors
    assert reload(dead).status == "dead"


@pytest.mark.parametrize("ids", [[], ["notif-\x00"]])
def test_a_bulk_requeue_of_no_possible_id_requeues_nothing_and_says_so(db, bulk_requeue, caplog, ids):
    with caplog.at_level(logging.INFO, logger="notifications.services"):
        result = bulk_requeue(OPERATOR, ids=ids)

    assert (result.requeued, result.skipped) == (0, len(ids))
    assert caplog.messages == [
        f"bulk requeue by alice via api: 0 requeued (was failed or dead), {len(ids)} skipped; e.g. none"
    ]


def leased_and_dead(make_event: Callable[..., NotificationEvent]) -> tuple[NotificationEvent, NotificationEvent]:
    """A failed event a worker holds right now (its lease runs until T0 + 5 min) and a dead one nobody holds."""
    leased = put_in_state(make_event(), "failed", now=T0 - 10 * MINUTE)
    dead = put_in_state(make_event(), "dead")
    [claimed] = claims.claim_due_events("retry", now=T0)
    assert claimed.id == leased.id
    return claimed, dead


@pytest.mark.parametrize("how", ["ids", "filter"])
def test_bulk_requeue_skips_an_event_whose_lease_is_live(make_event, how, bulk_requeue):
    claimed, dead = leased_and_dead(make_event)
    selection = {"ids": [claimed.id, dead.id]} if how == "ids" else {"filters": {"channel": "Webhook"}}

    result = bulk_requeue(OPERATOR, now=T0 + MINUTE, **selection)

    assert (result.requeued, result.skipped) == (1, 1)
    leased = reload(claimed)
    assert (leased.status, leased.retry_count, leased.claim_token) == ("failed", 2, claimed.claim_token)
    assert leased.claimed_until == claimed.claimed_until
    assert reload(dead).status == "pending"
    assert [(a.event_id, a.previous_status) for a in OperatorAction.objects.all()] == [(dead.id, "dead")]


def test_a_dry_run_counts_an_event_whose_lease_is_live_as_skipped(make_event):
    claimed, dead = leased_and_dead(make_event)

    preview = preview_requeue(ids=[claimed.id, dead.id], now=T0 + MINUTE)

    assert preview == BulkPreview(would_change=1, skipped=1, sample=[dead.id])
    assert preview_requeue(ids=[claimed.id, dead.id], now=claimed.claimed_until + MINUTE).would_change == 2


@pytest.mark.postgres
def test_a_bulk_requeue_skips_a_row_a_worker_has_locked_instead_of_waiting(transactional_db):
    locked, free = (
        put_in_state(
            create_event(
                type="RenewalFailure", channel="Webhook", recipient="ops@example.com", message=f"renewal {n} failed"
            )[0],
            "dead",
        )
        for n in range(2)
    )
    db = connection.settings_dict
    worker = psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None, dbname=db["NAME"]
    )
    try:
        # A worker is in the middle of claiming this row.
        worker.execute(f"SELECT id FROM {NotificationEvent._meta.db_table} WHERE id = %s FOR UPDATE", [locked.id])
        with connection.cursor() as cursor:
            # A requeue that waited for the lock would fail after this, instead of hanging the test.
            cursor.execute("SET lock_timeout = '2s'")
        try:
            result = requeue_events(OPERATOR, ids=[locked.id, free.id])
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        worker.rollback()
        worker.close()

    assert (result.requeued, result.skipped) == (1, 1)
    assert (reload(locked).status, reload(free).status) == ("dead", "pending")
    assert [action.event_id for action in OperatorAction.objects.all()] == [free.id]


def test_bulk_requeue_takes_an_event_once_its_lease_has_expired(make_event):
    claimed, dead = leased_and_dead(make_event)

    result = requeue_events(OPERATOR, ids=[claimed.id, dead.id], now=claimed.claimed_until + MINUTE)

    assert (result.requeued, result.skipped) == (2, 0)
    requeued = reload(claimed)
    assert (requeued.status, requeued.claim_token, requeued.claimed_until) == ("pending", None, None)


@pytest.mark.postgres
def test_bulk_requeue_is_one_statement_whatever_the_number_of_events(make_event):
    dead = [put_in_state(make_event(), "dead") for _ in range(120)]

    with CaptureQueriesContext(connection) as queries:
        result = requeue_events(OPERATOR, filters={"status": "dead"})

    assert result.requeued == 120
    writes = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"] or "INSERT" in q["sql"]]
    assert len(writes) == 1  # the UPDATE … RETURNING and the INSERT … SELECT of the actions, in one statement
    # The skipped count comes from notification_counts: no count over a year of events.
    assert not [q["sql"] for q in queries.captured_queries if 'AS "__count" FROM "notification_events"' in q["sql"]]
    assert OperatorAction.objects.filter(action="requeue", bulk=True, previous_status="dead").count() == 120
    assert {reload(event).status for event in dead} == {"pending"}


def test_a_bulk_requeue_of_more_than_a_thousand_resets_and_records_every_event(db, bulk_requeue, caplog):
    dead = NotificationEvent.objects.bulk_create(
        NotificationEvent(
            type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n} expires",
            status="dead", retry_count=5, attempt_count=5, last_error="Webhook answered HTTP 500", read_at=T0,
            cause="Webhook answered HTTP 500", cause_kind="transient",
        )
        for n in range(1001)
    )

    with caplog.at_level(logging.INFO, logger="notifications.services"):
        result = bulk_requeue(OPERATOR, filters={"delivery_status": "dead"}, now=LATER)

    assert (result.requeued, result.skipped) == (1001, 0)
    fields = (
        "status", "retry_count", "next_retry_at", "last_error", "read_at", "claimed_until", "updated_at", "cause",
        "cause_kind",
    )
    assert set(NotificationEvent.objects.values_list(*fields)) == {
        ("pending", 0, None, None, None, None, LATER, None, None)
    }
    actions = OperatorAction.objects.values_list("event_id", "action", "actor", "source", "bulk", "previous_status")
    assert sorted(actions) == sorted((e.id, "requeue", "alice", "api", True, "dead") for e in dead)
    [record] = caplog.records
    summary, _, sample = record.getMessage().partition("; e.g. ")
    assert summary == "bulk requeue by alice via api: 1001 requeued (was failed or dead), 0 skipped"
    assert len(sample.split(", ")) == 10
    assert set(sample.split(", ")) <= {e.id for e in dead}
    assert (record.requeued, record.sample_event_ids, record.status) == (1001, sample.split(", "), "pending")
