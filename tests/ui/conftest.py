"""Fixtures for the web UI tests: users with and without the change permission, and events in every state."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone

from notifications.notifiers import DeliveryResult
from notifications.queries.events import get_event
from tests import deliveries

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def dispatched(monkeypatch):
    """Records what services hand to the task queue instead of reaching a broker."""
    calls = []
    monkeypatch.setattr(
        "notifications.engine.dispatch.enqueue", lambda task, *args: calls.append((task, *args)) or True
    )
    return calls


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("operator", password=PASSWORD)
    user.user_permissions.add(Permission.objects.get(codename="change_notificationevent"))
    return user


@pytest.fixture
def viewer(django_user_model):
    return django_user_model.objects.create_user("viewer", password=PASSWORD)


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client


def record(event_id, result, now):
    claimed = deliveries.claim(event_id, now=now)
    assert claimed is not None, f"{event_id} was not due at {now}"
    deliveries.record(claimed, result, now)
    return get_event(event_id)


@pytest.fixture
def event_in(make_event):
    """make an event and drive it through real deliveries to `status`: pending, failed, dead or sent."""

    def make(status="pending", error="HTTP 503 from https://hooks.example.com/certctl: upstream unavailable", **fields):
        event = make_event(**fields)
        now = timezone.now() - timedelta(hours=2)
        if status == "sent":
            return record(event.id, DeliveryResult.success(http_status=200), now)
        if status == "failed":
            return record(event.id, DeliveryResult.transient(error, http_status=503), now)
        if status == "dead":
            for _ in range(settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS):
                event = record(event.id, DeliveryResult.transient(error, http_status=503), now)
                now = event.next_retry_at or now
            assert event.status == "dead"
            return event
        return event

    return make
