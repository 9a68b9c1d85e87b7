"""The channel registry: one notifier per Channel, each declaring its required and secret settings."""
from notifications.models import Channel
from notifications.notifiers import build_notifier, channel_status, notifiers, secret_settings

SLACK_URL = "https://hooks.slack.com/services/T000/B000/slAckT0kenSecretXyz"


def test_every_channel_has_a_notifier_that_names_it():
    table = notifiers()
    assert list(table) == Channel.values
    for channel, cls in table.items():
        assert cls.channel == channel
        assert cls.required_settings, f"{cls.__name__} declares no required settings"


def test_a_configured_channel_builds_its_notifier_from_its_declared_settings(settings):
    settings.CERTCTL_PAGERDUTY_ROUTING_KEY = "pd-routing-key-0123456789"
    notifier = build_notifier("PagerDuty")
    assert type(notifier) is notifiers()["PagerDuty"]
    assert notifier.routing_key == "pd-routing-key-0123456789"
    assert build_notifier("OpsGenie") is None


def test_missing_settings_come_from_the_declarations(settings):
    settings.CERTCTL_SMTP_HOST = "smtp.example.com"
    status = channel_status()
    assert status["Email"] == (False, ["CERTCTL_SMTP_FROM_ADDRESS"])
    assert status["Teams"] == (False, ["CERTCTL_TEAMS_WEBHOOK_URL"])


def test_secret_settings_returns_every_configured_secret_and_secret_url(settings):
    settings.CERTCTL_SMTP_PASSWORD = "smtp-password-value"
    settings.CERTCTL_WEBHOOK_SECRET = "webhook-hmac-secret-value"
    settings.CERTCTL_OPSGENIE_API_KEY = "opsgenie-api-key-value"
    settings.CERTCTL_SLACK_WEBHOOK_URL = SLACK_URL
    settings.CERTCTL_WEBHOOK_URL = "https://receiver.example.com/hook/abcdef0123456789abcdef"
    secrets = secret_settings()

    assert set(secrets.values) == {"smtp-password-value", "webhook-hmac-secret-value", "opsgenie-api-key-value"}
    assert set(secrets.urls) == {SLACK_URL, "https://receiver.example.com/hook/abcdef0123456789abcdef"}
    # Not secret as a whole, but their userinfo would be.
    assert set(secrets.endpoint_urls) == {settings.CERTCTL_PAGERDUTY_URL, settings.CERTCTL_OPSGENIE_URL}
    # Not secrets: where mail comes from, the Slack channel name.
    settings.CERTCTL_SMTP_FROM_ADDRESS = "certctl@example.com"
    assert "certctl@example.com" not in secret_settings().values
