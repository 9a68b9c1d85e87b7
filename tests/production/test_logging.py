"""Logs: one line per state change and per delivery attempt, JSON on request, never a secret."""
import io
import json
import logging
import logging.config
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from certctl.logging import SecretRedactionFilter
from certctl.middleware import RequestIDLogFilter
from notifications.actors import Actor
from notifications.engine import passes
from notifications.models import NotificationAttempt, NotificationEvent
from notifications.notifiers.webhook import WebhookNotifier
from notifications.operations.events import mark_read, requeue_events
from tests.deliveries import deliver_now
from tests.receivers import Reply

PROJECT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
ADMIN_KEY = "oncall-api-key-7c2f9e1d0b8a"
OPERATOR = Actor("oncall", "api")


@pytest.fixture(autouse=True)
def _synchronous_world(monkeypatch, settings):
    """Deliveries happen when a test runs a pass, not in the task cluster after commit."""
    monkeypatch.setattr("notifications.engine.dispatch.enqueue", lambda *args: True)
    settings.CERTCTL_AUTH_TYPE = "api-key"
    settings.CERTCTL_API_KEYS_NAMED = f"oncall:{ADMIN_KEY}:admin"


def _service_lines(caplog):
    """What operator actions and the delivery engine log about events."""
    return [r for r in caplog.records if r.name in ("notifications.services", "notifications.delivery")]


def _lines_about(caplog, event_id):
    return [r for r in _service_lines(caplog) if getattr(r, "event_id", None) == event_id]


@pytest.mark.django_db
def test_each_state_change_and_each_attempt_is_one_line_with_its_fields(caplog, webhook, make_event):
    caplog.set_level(logging.DEBUG, logger="notifications")
    webhook.reply_with(Reply(503, body="busy"), Reply(200))
    event = make_event()
    passes.process_pending(now=T0)
    passes.retry_sweep(now=T0 + timedelta(minutes=1))
    mark_read(event.id, OPERATOR, now=T0 + timedelta(minutes=2))

    lines = _lines_about(caplog, event.id)
    assert [r.getMessage().split(" ")[0] for r in lines] == [
        "created", "claimed", "attempt", "claimed", "attempt", "marked",
    ]
    created, _, failed, _, delivered, marked = lines
    assert created.channel == "Webhook"
    assert created.status == "pending"

    assert failed.levelno == logging.WARNING
    assert (failed.attempt, failed.outcome, failed.status, failed.http_status) == (
        1, "transient_failure", "failed", 503,
    )
    assert isinstance(failed.duration_ms, int)
    assert failed.channel == "Webhook"
    assert f"attempt 1 of event {event.id} via Webhook: transient_failure" in failed.getMessage()
    assert "HTTP 503" in failed.getMessage()

    assert (delivered.attempt, delivered.outcome, delivered.status) == (2, "success", "sent")
    assert marked.getMessage() == f"marked event {event.id} read by oncall via api"


@pytest.mark.django_db
def test_dead_letter_is_logged_per_event_and_a_bulk_requeue_in_one_line(caplog, make_event):
    caplog.set_level(logging.INFO, logger="notifications")
    events = [make_event() for _ in range(25)]
    for event in events:
        deliver_now(event.id)  # no Webhook URL configured: dead at once
    for event in events:
        messages = [r.getMessage() for r in _lines_about(caplog, event.id)]
        assert any("permanent_failure" in m and "now dead" in m and "CERTCTL_WEBHOOK_URL" in m for m in messages)
    caplog.clear()

    requeue_events(OPERATOR, filters={"delivery_status": "dead"})

    requeue_lines = [r for r in caplog.records if "requeue" in r.getMessage()]
    assert len(requeue_lines) == 1
    [line] = requeue_lines
    assert line.getMessage().startswith(
        "bulk requeue by oncall via api: 25 requeued (was failed or dead), 0 skipped; e.g. "
    )
    sample = line.getMessage().rsplit("e.g. ", 1)[1].split(", ")
    assert len(sample) == 10
    assert set(sample) <= {event.id for event in events}
    assert (line.requeued, line.sample_event_ids) == (25, sample)


def _json_handler(stream):
    """The console handler as settings.LOGGING builds it with CERTCTL_LOG_FORMAT=json, writing to `stream`."""
    configurator = logging.config.DictConfigurator(django_settings.LOGGING)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.configure_formatter(dict(django_settings.LOGGING["formatters"]["json"])))
    handler.addFilter(RequestIDLogFilter())
    handler.addFilter(SecretRedactionFilter())
    return handler


@pytest.mark.django_db
def test_json_lines_carry_the_event_fields_and_the_request_id_of_the_request_that_caused_them(webhook):
    stream = io.StringIO()
    handler = _json_handler(stream)
    logger = logging.getLogger("notifications")
    logger.addHandler(handler)
    try:
        response = APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}", "X-Request-ID": "req-create-42"}).post(
            "/api/v1/notifications",
            {
                "type": "RenewalFailure", "channel": "Webhook", "recipient": "ops@example.com",
                "message": "renewal failed",
            },
            format="json",
        )
        assert response.status_code == 201
        passes.process_pending()
    finally:
        logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    event_id = response.json()["id"]
    created = next(line for line in lines if line["message"].startswith("created event"))
    assert created["event_id"] == event_id
    assert created["request_id"] == "req-create-42"
    assert created["level"] == "INFO"
    assert created["logger"] == "notifications.services"
    assert created["time"]
    attempt = next(line for line in lines if line["message"].startswith("attempt 1"))
    assert attempt["event_id"] == event_id
    assert attempt["request_id"] == "-"  # a worker pass, not a request
    assert {attempt[key] for key in ("channel", "attempt", "outcome", "status")} == {"Webhook", 1, "success", "sent"}
    assert isinstance(attempt["duration_ms"], int)


def test_a_json_line_shows_no_secret_in_its_message_fields_or_traceback(settings):
    settings.CERTCTL_WEBHOOK_SECRET = SECRETS["CERTCTL_WEBHOOK_SECRET"]
    stream = io.StringIO()
    handler = _json_handler(stream)
    logger = logging.getLogger("notifications.delivery")
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"receiver echoed {SECRETS['CERTCTL_WEBHOOK_SECRET']}")
        except RuntimeError as exc:
            logger.exception("notifier raised: %s", exc, extra={"detail": f"reply was {exc}", "channel": "Webhook"})
    finally:
        logger.removeHandler(handler)

    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["message"], line["detail"], line["channel"]) == (
        "notifier raised: receiver echoed [redacted]", "reply was receiver echoed [redacted]", "Webhook"
    )
    assert "RuntimeError: receiver echoed [redacted]" in line["exc_info"]
    assert SECRETS["CERTCTL_WEBHOOK_SECRET"] not in stream.getvalue()


def test_certctl_log_format_json_makes_the_process_write_json_lines():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "certctl.settings",
        "SECRET_KEY": "log-format-test-key",
        "CERTCTL_LOG_FORMAT": "json",
    }
    code = (
        "import logging; "
        "logging.getLogger('notifications.services').info('created event %s', 'notif-X', extra={'event_id': 'notif-X'})"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "created event notif-X"
    assert line["event_id"] == "notif-X"
    assert line["level"] == "INFO"


# --- secrets ------------------------------------------------------------------


SECRETS = {
    "CERTCTL_SMTP_PASSWORD": "smtp-password-Jq83kLm2",
    "CERTCTL_WEBHOOK_SECRET": "webhook-hmac-secret-P0o9i8u7",
    "CERTCTL_PAGERDUTY_ROUTING_KEY": "pagerduty-routing-key-R4e5w6q7",
    "CERTCTL_OPSGENIE_API_KEY": "opsgenie-api-key-Z1x2c3v4b5",
    "CERTCTL_METRICS_TOKEN": "metrics-scrape-token-N7m8k9j0",
}
WEBHOOK_TOKEN = "whk0TOKEN0a1b2c3d4e5f6"
SLACK_TOKEN = "slack0TOKEN0XXXXXXXXXXXX"
TEAMS_SIGNATURE = "teams0SIG0YYYYYYYYYYYYYYY"


@pytest.fixture
def secrets_everywhere(settings, receiver, closed_port):
    """Every channel configured with secrets, every HTTP receiver failing and echoing them back."""
    for name, value in SECRETS.items():
        setattr(settings, name, value)
    settings.CERTCTL_SMTP_HOST = "127.0.0.1"
    settings.CERTCTL_SMTP_PORT = closed_port
    settings.CERTCTL_SMTP_USERNAME = "certctl"
    settings.CERTCTL_SMTP_FROM_ADDRESS = "certctl@example.com"
    settings.CERTCTL_WEBHOOK_URL = f"{receiver.url}/hooks/{WEBHOOK_TOKEN}"
    settings.CERTCTL_SLACK_WEBHOOK_URL = f"{receiver.url}/services/T0000/B0000/{SLACK_TOKEN}"
    settings.CERTCTL_TEAMS_WEBHOOK_URL = f"{receiver.url}/workflows/run?api-version=1&sig={TEAMS_SIGNATURE}"
    settings.CERTCTL_PAGERDUTY_URL = f"{receiver.url}/v2/enqueue"
    settings.CERTCTL_OPSGENIE_URL = f"{receiver.url}/v2/alerts"
    hidden = [*SECRETS.values(), ADMIN_KEY, WEBHOOK_TOKEN, SLACK_TOKEN, TEAMS_SIGNATURE]
    receiver.reply_with(Reply(500, body="upstream said: " + " ".join(hidden)))
    return hidden


def _leaks(caplog, hidden):
    found = []
    for record in caplog.records:
        # exc_info stays the live exception for handlers that want it; formatters print the redacted exc_text.
        fields = {name: value for name, value in vars(record).items() if name != "exc_info"}
        text = " ".join([record.getMessage(), repr(fields), record.exc_text or ""])
        found += [(record.name, secret) for secret in hidden if secret in text]
    return found


@pytest.mark.django_db
def test_no_secret_reaches_the_logs_when_every_channel_fails(caplog, client, secrets_everywhere):
    caplog.set_level(logging.DEBUG)
    api = APIClient(headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    for channel in ("Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie"):
        response = api.post(
            "/api/v1/notifications",
            {"type": "ExpirationWarning", "channel": channel, "recipient": "ops@example.com", "message": "expiring"},
            format="json",
        )
        assert response.status_code == 201
    APIClient(headers={"Authorization": "Bearer not-the-key"}).get("/api/v1/notifications")
    client.get("/metrics", REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION=f"Bearer {SECRETS['CERTCTL_METRICS_TOKEN']}")

    report = passes.process_pending()

    assert report.outcomes == {"failed": 6}
    assert len([r for r in _service_lines(caplog) if r.getMessage().startswith("attempt 1")]) == 6
    assert _leaks(caplog, secrets_everywhere) == []
    stored = [
        *NotificationEvent.objects.values_list("last_error", flat=True),
        *NotificationAttempt.objects.values_list("error", flat=True),
    ]
    assert not [text for text in stored if any(secret in text for secret in secrets_everywhere)]


@pytest.mark.django_db
def test_a_notifier_crash_quoting_its_url_leaks_it_neither_to_logs_nor_to_last_error(
    caplog, monkeypatch, secrets_everywhere, make_event
):
    async def crash(self, event, client):
        raise RuntimeError(f"cannot build a request for {self.url}")

    monkeypatch.setattr(WebhookNotifier, "send", crash)
    caplog.set_level(logging.INFO)
    event = make_event(channel="Webhook")
    passes.process_pending()

    event.refresh_from_db()
    assert event.status == "failed"
    assert event.last_error == (
        "internal error in the Webhook notifier: RuntimeError: cannot build a request for [redacted]"
    )
    assert any(r.exc_text and "[redacted]" in r.exc_text for r in caplog.records)
    assert _leaks(caplog, secrets_everywhere) == []
