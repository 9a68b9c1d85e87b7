"""New and requeued events are handed to the cluster once committed, and a broker outage loses nothing."""
import importlib
import logging

import pytest
from django.db import transaction

from notifications import services
from notifications.models import NotificationEvent
from tests.lifecycle.conftest import OPERATOR, T0, put_in_state, reload

pytestmark = pytest.mark.django_db

VALID = dict(type="RenewalFailure", channel="Webhook", recipient="ops@example.com", message="renewal of api.example.com failed")


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


def test_a_new_event_is_enqueued_only_after_commit(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event, _ = services.create_event(**VALID)
        assert broker == []

    assert broker == [("notifications.tasks.deliver_event", (event.id,))]


def test_nothing_is_enqueued_when_the_transaction_rolls_back(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Rollback), transaction.atomic():
            services.create_event(**VALID)
            raise Rollback

    assert callbacks == []
    assert broker == []
    assert not NotificationEvent.objects.exists()


def test_requeues_are_enqueued_after_commit(broker, make_event, django_capture_on_commit_callbacks):
    one, many = (put_in_state(make_event(), "dead") for _ in range(2))

    with django_capture_on_commit_callbacks(execute=True):
        services.requeue_event(one.id, OPERATOR)
        services.requeue_events(OPERATOR, ids=[many.id])

    assert broker == [("notifications.tasks.deliver_event", (one.id,)), ("notifications.tasks.process_pending", ())]


def test_the_enqueued_task_delivers_without_waiting_for_a_tick(webhook, monkeypatch, django_capture_on_commit_callbacks):
    def run_now(func, *args, **options):
        module, name = func.rsplit(".", 1)
        getattr(importlib.import_module(module), name)(*args)

    monkeypatch.setattr("django_q.tasks.async_task", run_now)

    with django_capture_on_commit_callbacks(execute=True):
        event, _ = services.create_event(**VALID)

    assert reload(event).status == "sent"
    assert [r.headers["X-Certctl-Event-ID"] for r in webhook.requests] == [event.id]


def test_a_broker_error_leaves_the_event_pending_for_the_next_pass(webhook, monkeypatch, caplog, django_capture_on_commit_callbacks):
    def broker_down(func, *args, **options):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("django_q.tasks.async_task", broker_down)

    with caplog.at_level(logging.WARNING, logger="notifications.tasks"):
        with django_capture_on_commit_callbacks(execute=True):
            event, created = services.create_event(**VALID)

    assert created
    assert reload(event).status == "pending"
    assert "the next scheduled pass will deliver it" in caplog.text

    services.process_pending(now=T0)
    assert reload(event).status == "sent"
    assert len(webhook.requests) == 1
