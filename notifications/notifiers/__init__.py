"""Channel notifiers and the registry that builds them from settings."""
from django.conf import settings

from notifications.notifiers.base import DeliveryResult, Notifier
from notifications.notifiers.email import EmailNotifier
from notifications.notifiers.opsgenie import OpsGenieNotifier
from notifications.notifiers.pagerduty import PagerDutyNotifier
from notifications.notifiers.slack import SlackNotifier
from notifications.notifiers.teams import TeamsNotifier
from notifications.notifiers.webhook import WebhookNotifier

# The settings each channel cannot work without, named as the operator sets them.
REQUIRED_SETTINGS = {
    "Email": ["CERTCTL_SMTP_HOST", "CERTCTL_SMTP_FROM_ADDRESS"],
    "Webhook": ["CERTCTL_WEBHOOK_URL"],
    "Slack": ["CERTCTL_SLACK_WEBHOOK_URL"],
    "Teams": ["CERTCTL_TEAMS_WEBHOOK_URL"],
    "PagerDuty": ["CERTCTL_PAGERDUTY_ROUTING_KEY"],
    "OpsGenie": ["CERTCTL_OPSGENIE_API_KEY"],
}


def missing_settings(channel: str) -> list[str]:
    return [name for name in REQUIRED_SETTINGS[channel] if not getattr(settings, name, "")]


def not_configured_error(channel: str) -> str:
    missing = missing_settings(channel)
    return f"{channel} channel is not configured: set {' and '.join(missing)}"


def build_notifier(channel: str) -> Notifier | None:
    """The notifier for `channel` from current settings, or None when it is not configured."""
    if missing_settings(channel):
        return None
    s = settings
    if channel == "Email":
        return EmailNotifier(
            host=s.CERTCTL_SMTP_HOST,
            port=s.CERTCTL_SMTP_PORT,
            from_address=s.CERTCTL_SMTP_FROM_ADDRESS,
            username=s.CERTCTL_SMTP_USERNAME,
            password=s.CERTCTL_SMTP_PASSWORD,
            use_tls=s.CERTCTL_SMTP_USE_TLS,
        )
    if channel == "Webhook":
        return WebhookNotifier(s.CERTCTL_WEBHOOK_URL, s.CERTCTL_WEBHOOK_SECRET)
    if channel == "Slack":
        return SlackNotifier(s.CERTCTL_SLACK_WEBHOOK_URL, s.CERTCTL_SLACK_CHANNEL, s.CERTCTL_SLACK_USERNAME)
    if channel == "Teams":
        return TeamsNotifier(s.CERTCTL_TEAMS_WEBHOOK_URL)
    if channel == "PagerDuty":
        return PagerDutyNotifier(s.CERTCTL_PAGERDUTY_ROUTING_KEY, s.CERTCTL_PAGERDUTY_URL, s.CERTCTL_PAGERDUTY_SEVERITY)
    if channel == "OpsGenie":
        return OpsGenieNotifier(s.CERTCTL_OPSGENIE_API_KEY, s.CERTCTL_OPSGENIE_URL, s.CERTCTL_OPSGENIE_PRIORITY)
    raise ValueError(f"unknown channel {channel!r}")


def channel_status() -> dict[str, tuple[bool, list[str]]]:
    """{channel: (configured, missing setting names)} for dashboards and health pages."""
    return {channel: (not missing_settings(channel), missing_settings(channel)) for channel in REQUIRED_SETTINGS}


__all__ = ["DeliveryResult", "Notifier", "build_notifier", "channel_status", "not_configured_error"]
