"""The five HTTP channels against a real local receiver: what it gets, and how each answer is classified."""
import asyncio
import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from notifications.notifiers import build_notifier
from notifications.notifiers.base import DeliveryResult
from notifications.notifiers.http import MAX_RETRY_AFTER, new_http_client, parse_retry_after, post_json
from notifications.notifiers.slack import URL as SLACK_URL_FIELD
from notifications.notifiers.webhook import URL as WEBHOOK_URL_FIELD
from notifications.notifiers.webhook import WebhookNotifier
from notifications.redaction import MAX_ERROR_LENGTH
from tests.bounded import finishes_within
from tests.deliveries import send_once
from tests.notifiers.conftest import make_event
from tests.receivers import Reply

SLACK_TOKEN_PATH = "/services/T0CERT/B0CTL/slAckT0kenSecretXyz"
TEAMS_SIGNATURE = "sig=teamsWorkflowSignatureSecret"
ROUTING_KEY = "R0utingKey0123456789abcdef012345"
OPSGENIE_KEY = "0a1b2c3d-opsgenie-api-key-4e5f6a7b8c9d"
WEBHOOK_SECRET = "webhook-hmac-secret-value"

HTTP_CHANNELS = ["Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie"]


def configure(settings, channel, base_url):
    """Point `channel` at `base_url`; returns the secrets no error text may contain."""
    if channel == "Webhook":
        settings.CERTCTL_WEBHOOK_URL = base_url + "/hook"
        settings.CERTCTL_WEBHOOK_SECRET = WEBHOOK_SECRET
        return [WEBHOOK_SECRET]
    if channel == "Slack":
        settings.CERTCTL_SLACK_WEBHOOK_URL = base_url + SLACK_TOKEN_PATH
        return [SLACK_TOKEN_PATH, "slAckT0kenSecretXyz"]
    if channel == "Teams":
        settings.CERTCTL_TEAMS_WEBHOOK_URL = base_url + "/workflows/run?api-version=1&" + TEAMS_SIGNATURE
        return [TEAMS_SIGNATURE]
    if channel == "PagerDuty":
        settings.CERTCTL_PAGERDUTY_ROUTING_KEY = ROUTING_KEY
        settings.CERTCTL_PAGERDUTY_URL = base_url + "/v2/enqueue"
        return [ROUTING_KEY]
    if channel == "OpsGenie":
        settings.CERTCTL_OPSGENIE_API_KEY = OPSGENIE_KEY
        settings.CERTCTL_OPSGENIE_URL = base_url + "/v2/alerts"
        return [OPSGENIE_KEY]
    raise ValueError(channel)


def send(channel, **event_fields):
    event = make_event(channel=channel, **event_fields)
    return event, send_once(build_notifier(channel), event)


def assert_no_secret(text, secrets):
    for secret in secrets:
        assert secret not in text


def test_channels_posting_to_one_server_are_one_destination_whatever_credentials_their_urls_carry(settings):
    """The engine caps the sends in flight per destination: per server, not per URL or per user."""
    settings.CERTCTL_WEBHOOK_URL = "https://bot:hunter2@hooks.example.com:8443/certctl?token=abc"
    settings.CERTCTL_OPSGENIE_API_KEY = OPSGENIE_KEY
    settings.CERTCTL_OPSGENIE_URL = "https://hooks.example.com:8443/v2/alerts"

    assert build_notifier("Webhook").destination == "https://hooks.example.com:8443"
    assert build_notifier("OpsGenie").destination == "https://hooks.example.com:8443"


# --- what each receiver gets ----------------------------------------------------


def test_webhook_posts_the_event_signed_with_hmac_of_the_exact_body(settings, receiver):
    configure(settings, "Webhook", receiver.url)
    event, result = send("Webhook")

    assert result.ok
    assert result.http_status == 200
    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "certctl-notifications"
    assert request.headers["X-Certctl-Event-ID"] == event.id
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Certctl-Signature"] == expected
    body = request.json()
    assert body["id"] == event.id
    assert body["type"] == "ExpirationWarning"
    assert body["certificate_id"] == "mc-api-prod"
    assert body["message"] == "api.example.com expires in 7 days"
    assert body["subject"] == "Certificate expiring: mc-api-prod"
    assert body["severity"] == "critical"


def test_webhook_without_secret_sends_no_signature(settings, receiver):
    configure(settings, "Webhook", receiver.url)
    settings.CERTCTL_WEBHOOK_SECRET = ""
    _, result = send("Webhook")

    assert result.ok
    assert "X-Certctl-Signature" not in receiver.requests[0].headers


def test_slack_sends_text_username_and_default_channel(settings, receiver):
    configure(settings, "Slack", receiver.url)
    settings.CERTCTL_SLACK_CHANNEL = "#pki-alerts"
    event, result = send("Slack", recipient="ops@example.com")

    assert result.ok
    [request] = receiver.requests
    assert request.path == SLACK_TOKEN_PATH
    body = request.json()
    assert body["text"] == "*Certificate expiring: mc-api-prod*\napi.example.com expires in 7 days"
    assert body["username"] == "certctl"
    assert body["channel"] == "#pki-alerts"
    assert request.headers["X-Certctl-Event-ID"] == event.id


def test_slack_recipient_channel_overrides_the_default(settings, receiver):
    configure(settings, "Slack", receiver.url)
    settings.CERTCTL_SLACK_CHANNEL = "#pki-alerts"
    settings.CERTCTL_SLACK_USERNAME = "cert-bot"
    send("Slack", recipient="#payments-oncall")

    body = receiver.requests[0].json()
    assert body["channel"] == "#payments-oncall"
    assert body["username"] == "cert-bot"


def test_teams_sends_an_adaptive_card_message(settings, receiver):
    configure(settings, "Teams", receiver.url)
    event, result = send("Teams")

    assert result.ok
    body = receiver.requests[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    texts = [block["text"] for block in card["body"] if block["type"] == "TextBlock"]
    assert texts == ["Certificate expiring: mc-api-prod", "api.example.com expires in 7 days"]
    [facts] = [block["facts"] for block in card["body"] if block["type"] == "FactSet"]
    assert {"title": "Event", "value": event.id} in facts
    assert {"title": "Certificate", "value": "mc-api-prod"} in facts


def test_pagerduty_triggers_with_the_event_id_as_dedup_key(settings, receiver):
    configure(settings, "PagerDuty", receiver.url)
    receiver.reply_with(Reply(status=202, body='{"status":"success","dedup_key":"x"}'))
    event, result = send("PagerDuty", severity="critical")

    assert result.ok
    assert result.http_status == 202
    request = receiver.requests[0]
    assert request.path == "/v2/enqueue"
    body = request.json()
    assert body["routing_key"] == ROUTING_KEY
    assert body["event_action"] == "trigger"
    assert body["dedup_key"] == event.id
    assert body["payload"]["severity"] == "critical"
    assert body["payload"]["source"] == "mc-api-prod"
    assert body["payload"]["summary"].startswith("Certificate expiring: mc-api-prod")


def test_pagerduty_uses_the_configured_severity_when_the_event_has_none(settings, receiver):
    configure(settings, "PagerDuty", receiver.url)
    settings.CERTCTL_PAGERDUTY_SEVERITY = "error"
    send("PagerDuty", severity=None)

    assert receiver.requests[0].json()["payload"]["severity"] == "error"


def test_opsgenie_creates_an_alert_aliased_by_event_id_with_genie_key(settings, receiver):
    configure(settings, "OpsGenie", receiver.url)
    receiver.reply_with(Reply(status=202, body='{"result":"Request will be processed"}'))
    event, result = send("OpsGenie", severity="critical")

    assert result.ok
    request = receiver.requests[0]
    assert request.path == "/v2/alerts"
    assert request.headers["Authorization"] == f"GenieKey {OPSGENIE_KEY}"
    body = request.json()
    assert body["alias"] == event.id
    assert body["message"] == "Certificate expiring: mc-api-prod"
    assert body["description"] == "api.example.com expires in 7 days"
    assert body["priority"] == "P1"


def test_opsgenie_uses_the_configured_priority_when_the_event_has_none(settings, receiver):
    configure(settings, "OpsGenie", receiver.url)
    settings.CERTCTL_OPSGENIE_PRIORITY = "P2"
    send("OpsGenie", severity=None)

    assert receiver.requests[0].json()["priority"] == "P2"


# --- how each answer is classified ------------------------------------------------


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_429_with_retry_after_seconds_is_transient_with_that_wait(channel, settings, receiver):
    secrets = configure(settings, channel, receiver.url)
    receiver.reply_with(Reply(status=429, body="slow down", headers={"Retry-After": "120"}))
    _, result = send(channel)

    assert not result.ok
    assert not result.permanent
    assert result.http_status == 429
    assert result.retry_after == timedelta(seconds=120)
    assert "HTTP 429" in result.error
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_429_with_retry_after_http_date_is_transient_until_that_date(channel, settings, receiver):
    configure(settings, channel, receiver.url)
    when = datetime.now(UTC) + timedelta(minutes=10)
    receiver.reply_with(Reply(status=429, headers={"Retry-After": format_datetime(when, usegmt=True)}))
    _, result = send(channel)

    assert not result.ok
    assert not result.permanent
    # The date has whole seconds, and a little time passes between building it and parsing it.
    assert timedelta(minutes=9) < result.retry_after <= timedelta(minutes=10)


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_503_with_retry_after_is_transient_with_that_wait(channel, settings, receiver):
    configure(settings, channel, receiver.url)
    receiver.reply_with(Reply(status=503, body="maintenance", headers={"Retry-After": "300"}))
    _, result = send(channel)

    assert not result.permanent
    assert result.retry_after == timedelta(seconds=300)
    assert "HTTP 503: maintenance" in result.error


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_500_is_transient_and_quotes_the_receiver(channel, settings, receiver):
    secrets = configure(settings, channel, receiver.url)
    receiver.reply_with(Reply(status=500, body="database down"))
    _, result = send(channel)

    assert not result.ok
    assert not result.permanent
    assert result.http_status == 500
    assert result.retry_after is None
    assert "HTTP 500: database down" in result.error
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize("status", [400, 404])
@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_4xx_is_permanent(channel, status, settings, receiver):
    secrets = configure(settings, channel, receiver.url)
    receiver.reply_with(Reply(status=status, body="no_such_endpoint"))
    _, result = send(channel)

    assert not result.ok
    assert result.permanent
    assert result.http_status == status
    assert f"HTTP {status}: no_such_endpoint" in result.error
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_receiver_echoing_the_request_does_not_leak_secrets_into_the_error(channel, settings, receiver):
    secrets = configure(settings, channel, receiver.url)
    echo = " ".join(secrets) + f" {receiver.url}/anything"
    receiver.reply_with(Reply(status=400, body=f"invalid request: {echo}"))
    _, result = send(channel)

    assert result.permanent
    assert "[redacted]" in result.error
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_redirect_is_permanent_and_not_followed(channel, settings, receiver):
    secrets = configure(settings, channel, receiver.url)
    receiver.reply_with(Reply(status=301, headers={"Location": receiver.url + "/elsewhere"}))
    _, result = send(channel)

    assert result.permanent
    assert result.http_status == 301
    assert "redirect" in result.error
    assert len(receiver.requests) == 1
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize("status", [200, 299])
def test_any_2xx_is_a_success(status, settings, receiver):
    configure(settings, "Webhook", receiver.url)
    receiver.reply_with(Reply(status=status, body=""))
    _, result = send("Webhook")

    assert (result.ok, result.http_status, result.error) == (True, status, "")


@pytest.mark.parametrize("status", [300, 399])
def test_every_3xx_is_a_redirect_to_fix_in_the_setting(status, settings, receiver):
    configure(settings, "Webhook", receiver.url)
    receiver.reply_with(Reply(status=status, body="moved"))
    _, result = send("Webhook")

    assert (result.ok, result.permanent, result.http_status) == (False, True, status)
    assert result.error == (
        f"Webhook receiver answered HTTP {status} (a redirect, which is not followed); fix CERTCTL_WEBHOOK_URL"
    )


def test_a_4xx_without_a_body_quotes_only_the_status(settings, receiver):
    configure(settings, "Webhook", receiver.url)
    receiver.reply_with(Reply(status=410, body="  "))
    _, result = send("Webhook")

    assert (result.permanent, result.error) == (True, "Webhook receiver answered HTTP 410")


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_receiver_slower_than_the_read_timeout_is_transient(channel, settings, receiver):
    secrets = configure(settings, channel, receiver.url)
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(milliseconds=300)
    # The receiver would answer long after the test's own bound: only the read timeout ends the send in time.
    receiver.reply_with(Reply(status=200, delay=30))
    _, result = finishes_within(5, lambda: send(channel))

    assert not result.ok
    assert not result.permanent
    assert result.http_status is None
    assert "no answer within the read timeout of 0.3s (CERTCTL_NOTIFICATION_READ_TIMEOUT)" in result.error
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_connection_refused_is_transient(channel, settings, closed_port):
    secrets = configure(settings, channel, f"http://127.0.0.1:{closed_port}")
    _, result = send(channel)

    assert not result.ok
    assert not result.permanent
    assert "could not connect" in result.error
    assert_no_secret(result.error, secrets)


@pytest.mark.parametrize(
    ("channel", "setting"),
    [
        ("Webhook", "CERTCTL_WEBHOOK_URL"),
        ("Slack", "CERTCTL_SLACK_WEBHOOK_URL"),
        ("Teams", "CERTCTL_TEAMS_WEBHOOK_URL"),
        ("PagerDuty", "CERTCTL_PAGERDUTY_URL"),
        ("OpsGenie", "CERTCTL_OPSGENIE_URL"),
    ],
)
def test_a_url_that_is_not_http_is_permanent_and_names_the_setting(channel, setting, settings):
    configure(settings, channel, "")
    setattr(settings, setting, "hooks.example.com/T0CERT/slAckT0kenSecretXyz")
    _, result = send(channel)

    assert result.permanent
    assert f"fix {setting}" in result.error
    assert "slAckT0kenSecretXyz" not in result.error


# --- Retry-After parsing ---------------------------------------------------------

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("30", timedelta(seconds=30)),
        (" 0 ", timedelta(0)),
        ("Sat, 28 Nov 2026 12:05:00 GMT", timedelta(minutes=5)),
        ("Sat, 28 Nov 2026 11:00:00 GMT", timedelta(0)),
        ("Sat, 28 Nov 2026 12:02:00 -0000", timedelta(minutes=2)),  # a date with no zone is read as UTC
        ("Sat, 28 Nov 2026 13:03:00 +0100", timedelta(minutes=3)),
        ("999999", MAX_RETRY_AFTER),
        ("9" * 5000, MAX_RETRY_AFTER),
        ("Fri, 01 Jan 2100 00:00:00 GMT", MAX_RETRY_AFTER),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize("channel", HTTP_CHANNELS)
def test_every_http_channel_sends_compact_json(channel, settings, receiver):
    configure(settings, channel, receiver.url)
    send(channel)

    body = receiver.requests[0].body
    assert body == json.dumps(json.loads(body), separators=(",", ":")).encode()


def test_a_notifiers_own_url_token_and_secret_are_hidden_even_when_no_setting_holds_them(receiver):
    token, secret = "hookTOKEN0a1b2c3d4e5f6", "signing-secret-Zx81Qw"
    receiver.reply_with(Reply(500, body=f"bad signature {secret} for /hooks/{token}"))
    notifier = WebhookNotifier(f"{receiver.url}/hooks/{token}", secret=secret)

    result = send_once(notifier, make_event(channel="Webhook"))

    assert result.error.startswith("Webhook receiver answered HTTP 500: bad signature ")
    assert_no_secret(result.error, [token, secret])


def test_a_receivers_reply_is_cut_to_the_error_limit_with_an_ellipsis_and_kept_whole_at_it(settings, receiver):
    configure(settings, "Webhook", receiver.url)
    prefix = "Webhook receiver answered HTTP 500: "
    fits = "x" * (MAX_ERROR_LENGTH - len(prefix))
    receiver.reply_with(Reply(500, body=fits), Reply(500, body=fits + "y"))

    assert send("Webhook")[1].error == prefix + fits
    cut = send("Webhook")[1].error
    assert (len(cut), cut) == (MAX_ERROR_LENGTH, prefix + fits[:-1] + "…")


def test_a_receiver_that_never_completes_the_connection_is_given_up_after_the_connect_timeout(settings):
    settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT = timedelta(seconds=0.5)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        # Its accept queue filled and never read: the kernel drops further connection attempts unanswered.
        waiting = [socket.socket() for _ in range(2)]
        for connection in waiting:
            connection.setblocking(False)
            connection.connect_ex(listener.getsockname())
        try:
            configure(settings, "Webhook", "http://{}:{}".format(*listener.getsockname()))
            _, result = finishes_within(5, lambda: send("Webhook"))
        finally:
            for connection in waiting:
                connection.close()

    assert result.error == (
        "Webhook receiver: no answer within the connect timeout of 0.5s (CERTCTL_NOTIFICATION_CONNECT_TIMEOUT); "
        "will retry"
    )


# --- failures before any answer, as the HTTP client reports them --------------------------------------------------


def post_failing_with(error: httpx.HTTPError, **settings_overrides) -> DeliveryResult:
    """post_json through a client whose every request fails with `error`, as httpx raises it."""

    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    async def post() -> DeliveryResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(fail)) as client:
            return await post_json(
                client, "https://hooks.example.com/T0/secretpath", {"text": "hi"},
                receiver="Slack webhook", url_field=SLACK_URL_FIELD,
            )

    return asyncio.run(post())


@pytest.mark.parametrize("error", [httpx.ConnectTimeout("timed out"), httpx.PoolTimeout("timed out")])
def test_no_connection_within_the_connect_timeout_is_transient_and_names_that_setting(settings, error):
    settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT = timedelta(milliseconds=1500)

    result = post_failing_with(error)

    assert (result.ok, result.permanent, result.http_status) == (False, False, None)
    assert result.error == (
        "Slack webhook: no answer within the connect timeout of 1.5s (CERTCTL_NOTIFICATION_CONNECT_TIMEOUT); will retry"
    )


@pytest.mark.parametrize("error", [httpx.ReadTimeout("timed out"), httpx.WriteTimeout("timed out")])
def test_no_answer_within_the_read_timeout_is_transient_and_names_that_setting(settings, error):
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(seconds=2)

    result = post_failing_with(error)

    assert not result.ok
    assert not result.permanent
    assert result.error == (
        "Slack webhook: no answer within the read timeout of 2s (CERTCTL_NOTIFICATION_READ_TIMEOUT); will retry"
    )


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "Slack webhook: could not connect ([Errno 111] Connection refused); will retry",
        ),
        (httpx.ConnectError(""), "Slack webhook: could not connect (ConnectError); will retry"),
        (
            httpx.RemoteProtocolError("peer closed connection"),
            "Slack webhook: request failed (peer closed connection); will retry",
        ),
        (httpx.RemoteProtocolError(""), "Slack webhook: request failed (RemoteProtocolError); will retry"),
    ],
)
def test_a_connection_that_fails_is_transient_and_says_why(error, message):
    result = post_failing_with(error)

    assert (result.ok, result.permanent, result.error) == (False, False, message)


def test_a_url_httpx_cannot_use_is_permanent_and_says_why(settings):
    result = post_failing_with(httpx.UnsupportedProtocol("Request URL has an unsupported protocol 'hooks://'."))

    assert result.permanent
    assert result.error == (
        "Slack webhook: the configured URL is not a valid http(s) URL "
        "(Request URL has an unsupported protocol 'hooks://'.); fix CERTCTL_SLACK_WEBHOOK_URL"
    )


def test_a_receiver_that_stops_reading_the_request_cannot_hold_the_send_past_the_timeout(settings):
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(milliseconds=300)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/hook"

        async def post() -> DeliveryResult:
            async with new_http_client() as client:
                # Far more than the socket buffers hold: the upload stalls once they are full.
                return await post_json(
                    client, url, {"text": "x" * 64_000_000}, receiver="Webhook receiver", url_field=WEBHOOK_URL_FIELD
                )

        result = finishes_within(15, lambda: asyncio.run(post()))

    assert not result.ok
    assert not result.permanent
    assert result.error == (
        "Webhook receiver: no answer within the read timeout of 0.3s (CERTCTL_NOTIFICATION_READ_TIMEOUT); will retry"
    )


def test_a_send_waiting_for_the_clients_one_connection_gives_up_after_the_connect_timeout(settings, receiver):
    settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT = timedelta(milliseconds=200)
    receiver.reply_with(Reply(status=200, delay=2))

    async def two_at_once() -> list[DeliveryResult]:
        async with new_http_client() as client:
            first = asyncio.create_task(
                post_json(client, receiver.url + "/hook", {}, receiver="Webhook receiver", url_field=WEBHOOK_URL_FIELD)
            )
            await asyncio.sleep(0.1)  # the first holds the connection, waiting for its answer
            second = await post_json(
                client, receiver.url + "/hook", {}, receiver="Webhook receiver", url_field=WEBHOOK_URL_FIELD
            )
            return [await first, second]

    first, second = finishes_within(15, lambda: asyncio.run(two_at_once()))

    assert first.ok
    assert second.error == (
        "Webhook receiver: no answer within the connect timeout of 0.2s (CERTCTL_NOTIFICATION_CONNECT_TIMEOUT); "
        "will retry"
    )
    assert len(receiver.requests) == 1
