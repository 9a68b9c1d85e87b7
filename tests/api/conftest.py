import pytest
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from rest_framework.test import APIClient

from notifications.queries.events import get_event
from tests.deliveries import deliver_now

READ_KEY = "ro-key-4f1c9b2e7d"
ADMIN_KEY = "admin-key-8a3e6d0c51"


@pytest.fixture(autouse=True)
def api_keys(settings):
    settings.CERTCTL_AUTH_TYPE = "api-key"
    settings.CERTCTL_API_KEYS_NAMED = f"dashboard:{READ_KEY},oncall:{ADMIN_KEY}:admin"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, not security
    return settings


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Token buckets live in the process-wide cache; each test starts with full buckets."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def reader():
    return APIClient(headers={"Authorization": f"Bearer {READ_KEY}"})


@pytest.fixture
def admin():
    return APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"})


@pytest.fixture
def operator_user(db):
    user = User.objects.create_user("alice", password="s3cret-pass-for-tests")
    user.user_permissions.add(Permission.objects.get(codename="change_notificationevent"))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def dead_event(make_event):
    """No notifier is configured for the channel, so the first delivery is a permanent failure."""
    event = make_event()
    assert deliver_now(event.id) == "dead"
    return get_event(event.id)


@pytest.fixture
def failed_event(make_event, settings, closed_port):
    settings.CERTCTL_WEBHOOK_URL = f"http://127.0.0.1:{closed_port}/hook"
    event = make_event()
    assert deliver_now(event.id) == "failed"
    settings.CERTCTL_WEBHOOK_URL = ""
    return get_event(event.id)


@pytest.fixture
def sent_event(make_event, webhook):
    event = make_event()
    assert deliver_now(event.id) == "sent"
    return get_event(event.id)


def assert_error(response, status_code, reason, *message_parts):
    """The API's one error shape, with the request id matching the header."""
    assert response.status_code == status_code, response.content
    body = response.json()
    assert set(body) - {"fields"} == {"error", "message", "request_id"}
    assert body["error"] == reason
    assert body["request_id"] == response["X-Request-ID"]
    for part in message_parts:
        assert part in body["message"]
    return body
