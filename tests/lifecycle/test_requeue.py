"""Requeue, one by one and in bulk: who may be requeued, what is reset and what is kept."""
from collections.abc import Callable

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import delivery, services
from notifications.models import NotificationEvent, OperatorAction
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, fail_until_dead, put_in_state, reload
from tests.receivers import Reply

pytestmark = pytest.mark.django_db

LATER = T0 + 90 * MINUTE


def snapshot(event):
    return NotificationEvent.objects.filter(id=event.id).values().get()


def test_requeue_of_dead_resets_counters_keeps_history_and_records_who(failing_webhook, make_event):
    event, _ = fail_until_dead(make_event())
    assert event.status == "dead"

    with time_machine.travel(LATER, tick=False):
        services.requeue_event(event.id, OPERATOR, now=LATER)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at, event.last_error) == ("pending", 0, None, None)
    assert event.attempts.count() == 5
    [action] = event.operator_actions.all()
    assert (action.action, action.actor, action.source, action.bulk) == ("requeue", "alice", "api", False)
    assert (action.previous_status, action.created_at) == ("dead", LATER)

    failing_webhook.reply_with(Reply(status=200))
    delivery.process_pending(now=LATER)
    event = reload(event)
    assert (event.status, event.retry_count) == ("sent", 0)
    assert [a.number for a in event.attempts.all()] == [1, 2, 3, 4, 5, 6]


def test_requeue_of_failed_clears_the_scheduled_retry(failing_webhook, make_event):
    event = make_event()
    delivery.process_pending(now=T0)

    services.requeue_event(event.id, OPERATOR, now=T0 + MINUTE / 2)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at, event.last_error) == ("pending", 0, None, None)
    assert event.attempts.count() == 1
    assert event.operator_actions.get().previous_status == "failed"


@pytest.mark.parametrize("status", ["sent", "pending"])
def test_requeue_of_sent_or_pending_is_refused_and_changes_nothing(make_event, status):
    event = put_in_state(make_event(), status)
    before = snapshot(event)

    with pytest.raises(services.RequeueRefused) as refused:
        services.requeue_event(event.id, OPERATOR, now=LATER)

    assert refused.value.current_status == status
    assert f"is {status}; only failed or dead notifications can be requeued" in refused.value.message
    assert snapshot(event) == before
    assert not OperatorAction.objects.exists()


def test_requeue_of_unknown_id_raises_event_not_found(db):
    with pytest.raises(services.EventNotFound) as missing:
        services.requeue_event("notif-nope", OPERATOR)

    assert missing.value.message == "notification notif-nope not found"


def test_requeue_while_a_worker_holds_the_event_is_refused_until_the_lease_ends(make_event):
    event = put_in_state(make_event(), "failed", now=T0 - 10 * MINUTE)
    [claimed] = delivery.claim_due_events("retry", now=T0)

    with pytest.raises(services.RequeueRefused) as refused:
        services.requeue_event(event.id, OPERATOR, now=T0 + MINUTE)
    assert "is being delivered right now" in refused.value.message
    assert reload(event).claim_token == claimed.claim_token

    after_lease = claimed.claimed_until + MINUTE
    assert services.requeue_event(event.id, OPERATOR, now=after_lease).status == "pending"


def test_bulk_requeue_by_ids_counts_requeued_and_skipped(make_event):
    dead, failed, sent, pending = (put_in_state(make_event(), s) for s in ("dead", "failed", "sent", "pending"))
    untouched = {e.id: snapshot(e) for e in (sent, pending)}

    result = services.requeue_events(OPERATOR, ids=[dead.id, failed.id, sent.id, pending.id, "notif-unknown", dead.id])

    assert (result.requeued, result.skipped) == (2, 3)
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

    result = services.requeue_events(OPERATOR, filters={"status": "dead", "channel": "Webhook"})

    assert (result.requeued, result.skipped) == (2, 0)
    assert {reload(e).status for e in dead_webhook} == {"pending"}
    assert reload(dead_slack).status == "dead"

    everything_on_webhook = services.requeue_events(OPERATOR, filters={"channel": "Webhook"})
    assert (everything_on_webhook.requeued, everything_on_webhook.skipped) == (0, 3)


def test_bulk_requeue_refuses_more_than_10000_ids(make_event):
    dead = put_in_state(make_event(), "dead")
    ids = [dead.id] + [f"notif-{n}" for n in range(10_000)]

    with pytest.raises(services.InvalidInput) as refused:
        services.requeue_events(OPERATOR, ids=ids)

    assert refused.value.errors == {"ids": "10001 ids given; at most 10000 per call"}
    assert reload(dead).status == "dead"


@pytest.mark.parametrize(
    "filters, field",
    [({}, "ids"), ({"recipient": "ops@example.com"}, "recipient")],
)
def test_bulk_requeue_needs_ids_or_a_known_filter(make_event, filters, field):
    dead = put_in_state(make_event(), "dead")

    with pytest.raises(services.InvalidInput) as refused:
        services.requeue_events(OPERATOR, filters=filters)

    assert field in refused.value.errors
    assert reload(dead).status == "dead"


def leased_and_dead(make_event: Callable[..., NotificationEvent]) -> tuple[NotificationEvent, NotificationEvent]:
    """A failed event a worker holds right now (its lease runs until T0 + 5 min) and a dead one nobody holds."""
    leased = put_in_state(make_event(), "failed", now=T0 - 10 * MINUTE)
    dead = put_in_state(make_event(), "dead")
    [claimed] = delivery.claim_due_events("retry", now=T0)
    assert claimed.id == leased.id
    return claimed, dead


@pytest.mark.parametrize("how", ["ids", "filter"])
def test_bulk_requeue_skips_an_event_whose_lease_is_live(make_event, how):
    claimed, dead = leased_and_dead(make_event)
    selection = {"ids": [claimed.id, dead.id]} if how == "ids" else {"filters": {"channel": "Webhook"}}

    result = services.requeue_events(OPERATOR, now=T0 + MINUTE, **selection)

    assert (result.requeued, result.skipped) == (1, 1)
    leased = reload(claimed)
    assert (leased.status, leased.retry_count, leased.claim_token) == ("failed", 2, claimed.claim_token)
    assert leased.claimed_until == claimed.claimed_until
    assert reload(dead).status == "pending"
    assert [(a.event_id, a.previous_status) for a in OperatorAction.objects.all()] == [(dead.id, "dead")]


def test_bulk_requeue_takes_an_event_once_its_lease_has_expired(make_event):
    claimed, dead = leased_and_dead(make_event)

    result = services.requeue_events(OPERATOR, ids=[claimed.id, dead.id], now=claimed.claimed_until + MINUTE)

    assert (result.requeued, result.skipped) == (2, 0)
    requeued = reload(claimed)
    assert (requeued.status, requeued.claim_token, requeued.claimed_until) == ("pending", None, None)


@pytest.mark.postgres
def test_bulk_requeue_is_one_statement_whatever_the_number_of_events(make_event):
    dead = [put_in_state(make_event(), "dead") for _ in range(120)]

    with CaptureQueriesContext(connection) as queries:
        result = services.requeue_events(OPERATOR, filters={"status": "dead"})

    assert result.requeued == 120
    writes = [q["sql"] for q in queries.captured_queries if "UPDATE" in q["sql"] or "INSERT" in q["sql"]]
    assert len(writes) == 1  # the UPDATE … RETURNING and the INSERT … SELECT of the actions, in one statement
    assert OperatorAction.objects.filter(action="requeue", bulk=True, previous_status="dead").count() == 120
    assert {reload(event).status for event in dead} == {"pending"}
