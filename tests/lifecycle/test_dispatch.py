"""New and requeued events are handed to the cluster once committed, a burst as one kick, and a broker outage
loses nothing."""
import importlib
import logging
from datetime import timedelta

import pytest
from django.db import OperationalError, transaction

from notifications import tasks
from notifications.engine import claims, dispatch, passes
from notifications.models import DeliveryKick, NotificationEvent
from notifications.operations.events import create_event, requeue_event, requeue_events
from tests.lifecycle.conftest import OPERATOR, T0, put_in_state, reload

pytestmark = pytest.mark.django_db

VALID = dict(
    type="RenewalFailure", channel="Webhook", recipient="ops@example.com", message="renewal of api.example.com failed"
)


class Rollback(Exception):
    pass


@pytest.fixture
def broker(monkeypatch):
    """django-q2's async_task, recording what is handed to the cluster."""
    handed = []

    def async_task(func, *args, **options):
        handed.append((func, args))

    monkeypatch.setattr("django_q.tasks.async_task", async_task)
    return handed


KICK = ("notifications.tasks.deliver_pending", ())


def test_a_new_event_is_enqueued_only_after_commit(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        create_event(**VALID)
        assert broker == []

    assert broker == [KICK]


def test_nothing_is_enqueued_when_the_transaction_rolls_back(broker, django_capture_on_commit_callbacks):
    def create_then_roll_back():
        with transaction.atomic():
            create_event(**VALID)
            raise Rollback

    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(Rollback):
        create_then_roll_back()

    assert callbacks == []
    assert broker == []
    assert not NotificationEvent.objects.exists()


def test_requeues_are_enqueued_after_commit(broker, make_event, django_capture_on_commit_callbacks):
    one, many = (put_in_state(make_event(), "dead") for _ in range(2))
    DeliveryKick.objects.update(queued_at=None)

    with django_capture_on_commit_callbacks(execute=True):
        requeue_event(one.id, OPERATOR)
        assert broker == []
    assert broker == [KICK]

    broker.clear()
    tasks.deliver_pending()
    with django_capture_on_commit_callbacks(execute=True):
        requeue_events(OPERATOR, ids=[many.id])
    assert broker == [KICK]


def test_a_burst_of_creates_queues_one_kick_until_that_kick_starts(broker, django_capture_on_commit_callbacks):
    for n in range(50):
        with django_capture_on_commit_callbacks(execute=True):
            create_event(**{**VALID, "message": f"renewal {n} failed"})
    assert broker == [KICK]

    tasks.deliver_pending()  # the worker takes the kick: it clears the mark first
    with django_capture_on_commit_callbacks(execute=True):
        create_event(**VALID)
    assert broker == [KICK, KICK]


def test_the_kick_clears_its_mark_before_it_claims(broker, monkeypatch):
    seen = []
    claim = claims.claim_due_events

    def claim_and_look(*args, **kwargs):
        seen.append(DeliveryKick.objects.get(id=1).queued_at)
        return claim(*args, **kwargs)

    monkeypatch.setattr(claims, "claim_due_events", claim_and_look)
    assert dispatch.request_kick(now=T0)
    tasks.deliver_pending()
    # An event committed while the kick claims asks for a kick of its own; none waits for the schedule.
    assert seen
    assert set(seen) == {None}


def test_a_kick_queued_long_ago_does_not_hold_back_a_new_one(broker):
    assert dispatch.request_kick(now=T0)
    assert not dispatch.request_kick(now=T0 + dispatch.KICK_STALE)
    assert dispatch.request_kick(now=T0 + dispatch.KICK_STALE + timedelta(milliseconds=1))
    assert broker == [KICK, KICK]


def test_a_kick_that_could_not_be_enqueued_is_asked_for_again_by_the_next_create(
    monkeypatch, django_capture_on_commit_callbacks
):
    handed = []

    def broker_down(func, *args, **options):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        create_event(**VALID)
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **options: handed.append(func))
    with django_capture_on_commit_callbacks(execute=True):
        create_event(**VALID)

    assert handed == ["notifications.tasks.deliver_pending"]


def test_the_enqueued_task_delivers_without_waiting_for_a_tick(
    webhook, monkeypatch, django_capture_on_commit_callbacks
):
    def run_now(func, *args, **options):
        module, name = func.rsplit(".", 1)
        getattr(importlib.import_module(module), name)(*args)

    monkeypatch.setattr("django_q.tasks.async_task", run_now)

    with django_capture_on_commit_callbacks(execute=True):
        event, _ = create_event(**VALID)

    assert reload(event).status == "sent"
    assert [r.headers["X-Certctl-Event-ID"] for r in webhook.requests] == [event.id]


def test_a_broker_error_leaves_the_event_pending_for_the_next_pass(
    webhook, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(func, *args, **options):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)

    with (
        caplog.at_level(logging.WARNING, logger="notifications.tasks"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        event, created = create_event(**VALID)

    assert created
    assert reload(event).status == "pending"
    assert "the next scheduled pass will deliver it" in caplog.text

    passes.process_pending(now=T0)
    assert reload(event).status == "sent"
    assert len(webhook.requests) == 1


@pytest.mark.parametrize("task", ["process_pending", "retry_sweep", "deliver_pending"])
def test_a_pass_lost_to_a_database_outage_is_tried_again_by_a_kick_at_once(broker, monkeypatch, task):
    def outage(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(passes, "process_pending", outage)
    monkeypatch.setattr(passes, "retry_sweep", outage)
    DeliveryKick.objects.update(queued_at=None)

    with pytest.raises(OperationalError):
        getattr(tasks, task)()

    assert broker == [KICK]


def test_a_pass_cut_short_by_its_start_window_asks_for_a_kick_for_the_rest(broker, webhook, monkeypatch, settings):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 1
    for _ in range(2):
        create_event(**VALID)
    DeliveryKick.objects.update(queued_at=None)
    monkeypatch.setattr(claims, "start_window", lambda: -1.0)

    assert passes.process_pending(now=T0).outcomes == {"sent": 1, "released": 1}

    assert broker == [KICK]


def test_a_pass_cut_short_by_its_maximum_duration_asks_for_a_kick_for_the_rest(broker, webhook, settings):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 1
    settings.CERTCTL_NOTIFICATION_PASS_MAX_DURATION = timedelta(0)
    for _ in range(2):
        create_event(**VALID)
    DeliveryKick.objects.update(queued_at=None)

    assert passes.process_pending(now=T0).outcomes == {"sent": 1, "released": 1}

    assert broker == [KICK]


def test_a_pass_whose_window_closes_before_it_could_claim_the_rest_asks_for_a_kick(broker, webhook, monkeypatch):
    for _ in range(2):
        create_event(**VALID)
    DeliveryKick.objects.update(queued_at=None)
    monkeypatch.setattr(claims, "start_window", lambda: -1.0)

    # Claims of one event: the first is sent, nothing is left waiting, the second was never claimed.
    assert passes.process_pending(now=T0, limit=1).outcomes == {"sent": 1}

    assert broker == [KICK]


def test_a_pass_that_delivered_everything_asks_for_no_kick(broker, webhook):
    create_event(**VALID)
    DeliveryKick.objects.update(queued_at=None)

    assert passes.process_pending(now=T0).outcomes == {"sent": 1}

    assert broker == []
