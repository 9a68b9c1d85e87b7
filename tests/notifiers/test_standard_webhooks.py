"""The Webhook channel's Standard Webhooks signature, checked as a receiver would: with the standardwebhooks package."""
import base64
import secrets
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from notifications.notifiers import build_notifier
from notifications.notifiers.webhook import WebhookNotifier
from notifications.operations.events import create_event
from tests.deliveries import deliver_now, send_once
from tests.notifiers.conftest import make_event

RAW_SECRET = "webhook-hmac-secret-value"


def test_a_receiver_verifies_the_delivery_with_the_raw_secret(settings, receiver):
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    settings.CERTCTL_WEBHOOK_SECRET = RAW_SECRET
    event = make_event()
    result = send_once(build_notifier("Webhook"), event)

    assert result.ok
    [request] = receiver.requests
    payload = Webhook(RAW_SECRET.encode()).verify(request.body, request.headers)
    assert payload["id"] == event.id
    assert request.headers["webhook-id"] == event.id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 300
    # certctl's own signature is still there, beside the standard one.
    assert request.headers["X-Certctl-Signature"].startswith("sha256=")


def test_a_whsec_secret_is_the_base64_key(db, settings, receiver):
    key = secrets.token_bytes(24)
    secret = "whsec_" + base64.b64encode(key).decode()
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    settings.CERTCTL_WEBHOOK_SECRET = secret
    event = create_event(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message="m")[0]

    assert deliver_now(event.id) == "sent"
    [request] = receiver.requests
    assert Webhook(secret).verify(request.body, request.headers)["id"] == event.id
    # Keyed by the decoded bytes, not by the text of the secret.
    with pytest.raises(WebhookVerificationError):
        Webhook(secret.encode()).verify(request.body, request.headers)


def test_a_changed_body_or_timestamp_fails_verification(settings, receiver):
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    settings.CERTCTL_WEBHOOK_SECRET = RAW_SECRET
    send_once(build_notifier("Webhook"), make_event())
    [request] = receiver.requests
    receiver_side = Webhook(RAW_SECRET.encode())

    with pytest.raises(WebhookVerificationError):
        receiver_side.verify(request.body.replace(b"7 days", b"9 days"), request.headers)
    replayed = {**request.headers, "webhook-timestamp": str(int(request.headers["webhook-timestamp"]) + 1)}
    with pytest.raises(WebhookVerificationError):
        receiver_side.verify(request.body, replayed)


def test_the_timestamp_is_the_send_time_so_old_deliveries_are_refused(receiver):
    an_hour_ago = time.time() - 3600
    notifier = WebhookNotifier(receiver.url + "/hook", RAW_SECRET, clock=lambda: an_hour_ago)
    send_once(notifier, make_event())
    [request] = receiver.requests

    assert request.headers["webhook-timestamp"] == str(int(an_hour_ago))
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(RAW_SECRET.encode()).verify(request.body, request.headers)


def test_without_a_secret_nothing_is_signed(settings, receiver):
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    send_once(build_notifier("Webhook"), make_event())

    headers = {name.lower() for name in receiver.requests[0].headers}
    assert not headers & {"webhook-signature", "webhook-id", "webhook-timestamp", "x-certctl-signature"}


def test_a_whsec_secret_that_is_not_base64_fails_permanently_without_sending(settings, receiver):
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/hook"
    settings.CERTCTL_WEBHOOK_SECRET = "whsec_not*base64!"
    result = send_once(build_notifier("Webhook"), make_event())

    assert result.permanent
    assert "not base64" in result.error
    assert "not*base64" not in result.error
    assert receiver.requests == []
