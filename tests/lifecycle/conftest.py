"""Shared pieces of the lifecycle tests: a fixed clock, a failing receiver and quick ways to reach a state."""
from datetime import UTC, datetime, timedelta

import pytest

from notifications.actors import Actor
from notifications.engine import passes
from notifications.models import NotificationEvent
from tests.receivers import Reply

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
OPERATOR = Actor("alice", "api")


@pytest.fixture(autouse=True)
def _default_retry_policy(settings):
    """DESIGN §2's defaults, whatever the developer's environment says."""
    settings.CERTCTL_NOTIFICATION_BACKOFF_BASE = MINUTE
    settings.CERTCTL_NOTIFICATION_BACKOFF_CAP = timedelta(hours=1)
    settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS = 5
    settings.CERTCTL_NOTIFICATION_BACKOFF_JITTER = 0
    settings.CERTCTL_NOTIFICATION_LEASE = timedelta(minutes=5)


@pytest.fixture
def failing_webhook(webhook):
    webhook.reply_with(Reply(status=500, body="receiver down"))
    return webhook


def reload(event):
    return NotificationEvent.objects.get(id=event.id)


def fail_until_dead(event, start=T0, limit=20):
    """Run the first send and then every retry when it comes due; return the event and the waits between attempts."""
    passes.process_pending(now=start)
    event = reload(event)
    now, waits = start, []
    for _ in range(limit):
        if event.status != "failed":
            break
        waits.append(event.next_retry_at - now)
        now = event.next_retry_at
        passes.retry_sweep(now=now)
        event = reload(event)
    return event, waits


def put_in_state(event, status, now=T0):
    """Set up a state quickly, with the fields the state machine gives it, for tests about what follows."""
    no_cause = dict(cause=None, cause_kind=None)
    fields = {
        "pending": dict(retry_count=0, next_retry_at=None, last_error=None, sent_at=None, **no_cause),
        "sent": dict(retry_count=0, next_retry_at=None, last_error=None, sent_at=now, **no_cause),
        "failed": dict(
            retry_count=2, next_retry_at=now + 2 * MINUTE, last_error="Webhook answered HTTP 500", sent_at=None,
            **no_cause,
        ),
        "dead": dict(
            retry_count=5, next_retry_at=None, last_error="Webhook answered HTTP 500", sent_at=None,
            cause="Webhook answered HTTP 500", cause_kind="transient",
        ),
    }[status]
    NotificationEvent.objects.filter(id=event.id).update(status=status, **fields)
    return reload(event)
