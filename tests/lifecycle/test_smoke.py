from datetime import timedelta

import time_machine
from django.utils import timezone

from notifications import services
from notifications.models import NotificationEvent


def test_first_send_failure_is_scheduled_for_retry(webhook, make_event):
    webhook.reply_with(__import__("tests.receivers", fromlist=["Reply"]).Reply(status=500, body="boom"))
    event = make_event()
    with time_machine.travel("2026-01-01 00:00:00+00:00", tick=False):
        services.process_pending()
        event.refresh_from_db()
        assert event.status == "failed"
        assert event.retry_count == 1
        assert event.next_retry_at == timezone.now() + timedelta(minutes=1)
        assert "HTTP 500" in event.last_error
    assert NotificationEvent.objects.get(id=event.id).attempts.count() == 1
