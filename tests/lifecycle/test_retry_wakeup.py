"""A retry due before the retry sweep's next whole-minute tick does not wait for it: after each pass the sweep's
schedule is brought forward to the earliest retry time, never put off."""
from datetime import datetime, timedelta

import pytest
from django_q.models import Schedule

from notifications.engine import passes
from notifications.models import NotificationEvent, Status
from notifications.operations.events import create_event
from notifications.schedules import ensure_schedules
from tests.lifecycle.conftest import T0

pytestmark = pytest.mark.django_db

PROCESS = "certctl: process pending notifications"
SWEEP = "certctl: notification retry sweep"


def failed_event_due_at(when: datetime) -> None:
    event, _ = create_event(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message="cert")
    NotificationEvent.objects.filter(id=event.id).update(status=Status.FAILED, retry_count=1, next_retry_at=when)


def test_a_pass_brings_the_retry_sweep_forward_to_the_earliest_retry_time() -> None:
    ensure_schedules()
    Schedule.objects.filter(name=SWEEP).update(next_run=T0 + timedelta(minutes=1))
    failed_event_due_at(T0 + timedelta(seconds=20))
    failed_event_due_at(T0 + timedelta(seconds=40))

    assert passes.retry_sweep(now=T0).claimed == 0

    assert Schedule.objects.get(name=SWEEP).next_run == T0 + timedelta(seconds=20)
    assert Schedule.objects.get(name=PROCESS).next_run != T0 + timedelta(seconds=20)


def test_a_pass_never_puts_the_retry_sweep_off() -> None:
    ensure_schedules()
    Schedule.objects.filter(name=SWEEP).update(next_run=T0 + timedelta(seconds=10))
    failed_event_due_at(T0 + timedelta(seconds=20))

    passes.process_pending(now=T0)

    assert Schedule.objects.get(name=SWEEP).next_run == T0 + timedelta(seconds=10)
