"""The channel registry: one notifier per Channel, each declaring its configuration fields (required, secret) once."""
from dataclasses import replace

from notifications.models import Channel
from notifications.notifiers import build_notifier, channel_status, configured_secrets, notifiers, secret_settings
from notifications.notifiers.pagerduty import PagerDutyNotifier
from notifications.notifiers.webhook import WebhookNotifier
from notifications.redaction import redact

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
    settings.CERTCTL_OPSGENIE_URL = "https://api.eu.opsgenie.com/v2/alerts"
    secrets = secret_settings()

    assert set(secrets.values) == {"smtp-password-value", "webhook-hmac-secret-value", "opsgenie-api-key-value"}
    assert set(secrets.urls) == {SLACK_URL, "https://receiver.example.com/hook/abcdef0123456789abcdef"}
    # Not secret as a whole, but their userinfo would be.
    assert set(secrets.endpoint_urls) == {settings.CERTCTL_PAGERDUTY_URL, settings.CERTCTL_OPSGENIE_URL}
    # Not secrets: where mail comes from, the Slack channel name.
    settings.CERTCTL_SMTP_FROM_ADDRESS = "certctl@example.com"
    assert "certctl@example.com" not in secret_settings().values


def test_a_notifier_is_built_from_a_config_dict_keyed_by_its_fields():
    notifier = PagerDutyNotifier.from_config(
        {
            "routing_key": "pd-key-0123456789", "url": "https://events.example.com/v2/enqueue",
            "default_severity": "critical",
        }
    )
    assert (notifier.routing_key, notifier.url, notifier.default_severity) == (
        "pd-key-0123456789", "https://events.example.com/v2/enqueue", "critical",
    )
    assert [field.name for field in PagerDutyNotifier.fields] == ["routing_key", "url", "default_severity"]


def test_the_environments_config_dict_comes_from_the_settings_the_fields_name(settings):
    settings.CERTCTL_WEBHOOK_URL = "https://receiver.example.com/hook"
    settings.CERTCTL_WEBHOOK_SECRET = "whsec_c2VjcmV0"
    assert WebhookNotifier.config_from_settings(settings) == {
        "url": "https://receiver.example.com/hook", "secret": "whsec_c2VjcmV0",
    }
    for cls in notifiers().values():
        assert set(cls.config_from_settings(settings)) == {field.name for field in cls.fields}


def test_what_is_secret_comes_from_the_field_declarations(settings, monkeypatch):
    settings.CERTCTL_SLACK_CHANNEL = "#pki-alerts-channel"
    assert redact("posted to #pki-alerts-channel", configured_secrets()) == "posted to #pki-alerts-channel"
    slack = notifiers()["Slack"]
    declared = tuple(field if field.name != "channel_name" else replace(field, secret=True) for field in slack.fields)
    monkeypatch.setattr(slack, "fields", declared)
    assert redact("posted to #pki-alerts-channel", configured_secrets()) == "posted to [redacted]"

