"""Channels seen through the service layer: what an operator finds on the event after delivery."""
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from notifications.engine import passes
from notifications.notifiers import build_notifier, channel_status
from tests.bounded import finishes_within
from tests.notifiers.test_email import TIMEOUT_BOUND_S, configure_email
from tests.receivers import Reply

T0 = "2026-11-28 12:00:00+00:00"


def deliver(event):
    passes.process_pending()
    event.refresh_from_db()
    return event


def test_fault_7_webhook_is_wired_and_delivers(webhook, make_event):
    event = make_event(channel="Webhook")

    deliver(event)

    assert event.status == "sent"
    assert event.sent_at is not None
    [request] = webhook.requests
    assert request.headers["X-Certctl-Event-ID"] == event.id
    assert request.json()["message"] == "api.example.com expires in 7 days"
    assert event.attempts.get().http_status == 200


@pytest.mark.parametrize(
    ("channel", "variable"),
    [
        ("Webhook", "CERTCTL_WEBHOOK_URL"),
        ("Slack", "CERTCTL_SLACK_WEBHOOK_URL"),
        ("Teams", "CERTCTL_TEAMS_WEBHOOK_URL"),
        ("PagerDuty", "CERTCTL_PAGERDUTY_ROUTING_KEY"),
        ("OpsGenie", "CERTCTL_OPSGENIE_API_KEY"),
        ("Email", "CERTCTL_SMTP_HOST"),
    ],
)
def test_fault_8_missing_notifier_dead_letters_not_sent(make_event, channel, variable):
    event = make_event(channel=channel)

    deliver(event)

    assert event.status == "dead"
    assert event.sent_at is None
    assert event.next_retry_at is None
    assert variable in event.last_error
    assert f"{channel} channel is not configured" in event.last_error
    assert event.attempts.get().outcome == "permanent_failure"


def test_email_not_configured_names_both_missing_variables(make_event, settings):
    settings.CERTCTL_SMTP_HOST = "mail.example.com"
    event = deliver(make_event(channel="Email"))

    assert event.status == "dead"
    assert event.last_error == "Email channel is not configured: set CERTCTL_SMTP_FROM_ADDRESS"


def test_webhook_500_leaves_the_event_failed_with_the_http_status(webhook, make_event):
    webhook.reply_with(Reply(status=500, body="upstream broken"))
    event = make_event(channel="Webhook")

    with time_machine.travel(T0, tick=False):
        deliver(event)
        assert event.status == "failed"
        assert event.retry_count == 1
        assert event.next_retry_at == timezone.now() + timedelta(minutes=1)
    assert "HTTP 500" in event.last_error
    assert event.attempts.get().http_status == 500


def test_webhook_404_dead_letters_at_once(webhook, make_event):
    # Not "no such hook": the receiver's own URL ends in /hook, and every piece of it is hidden in its replies.
    webhook.reply_with(Reply(status=404, body="no such endpoint"))
    event = deliver(make_event(channel="Webhook"))

    assert event.status == "dead"
    assert event.retry_count == 1
    assert "HTTP 404: no such endpoint" in event.last_error


def test_retry_after_longer_than_the_backoff_pushes_the_next_retry_out(webhook, make_event):
    webhook.reply_with(Reply(status=429, headers={"Retry-After": "600"}))
    event = make_event(channel="Webhook")

    with time_machine.travel(T0, tick=False):
        deliver(event)
        assert event.status == "failed"
        assert event.next_retry_at == timezone.now() + timedelta(seconds=600)


def test_fault_9_smtp_timeout_does_not_hang(transactional_db, settings, fast_timeouts, silent_smtp_port, make_event):
    configure_email(settings, silent_smtp_port, use_tls=True)
    event = make_event(channel="Email")

    finishes_within(TIMEOUT_BOUND_S, lambda: deliver(event))

    assert event.status == "failed"
    assert event.next_retry_at is not None
    assert "no answer within 0.5s" in event.last_error


def test_email_delivered_through_the_service(settings, smtp_server, make_event):
    port, mailbox = smtp_server()
    configure_email(settings, port)
    event = deliver(make_event(channel="Email", recipient="pki-team@example.com"))

    assert event.status == "sent"
    assert mailbox.messages[0]["to"] == ["pki-team@example.com"]


def test_certificate_id_with_a_line_break_dead_letters_email_without_sending(settings, smtp_server, make_event):
    port, mailbox = smtp_server()
    configure_email(settings, port)
    event = deliver(make_event(channel="Email", certificate_id="mc-1\r\nBcc: victim@example.com"))

    assert event.status == "dead"
    assert "subject" in event.last_error
    assert "line break" in event.last_error
    assert mailbox.messages == []


def test_channel_status_reports_what_is_missing(settings):
    settings.CERTCTL_WEBHOOK_URL = "https://hooks.example.com/certctl"

    status = channel_status()

    assert status["Webhook"] == (True, [])
    assert status["Email"] == (False, ["CERTCTL_SMTP_HOST", "CERTCTL_SMTP_FROM_ADDRESS"])
    assert build_notifier("Slack") is None

