from typing import TYPE_CHECKING, Any

import httpx

from notifications.notifiers.base import DeliveryResult, Notifier, post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent


class SlackNotifier(Notifier):
    """Slack incoming webhook."""

    channel = "Slack"
    required_settings = ("CERTCTL_SLACK_WEBHOOK_URL",)
    secret_url_settings = ("CERTCTL_SLACK_WEBHOOK_URL",)

    @classmethod
    def from_settings(cls, s: Any) -> "SlackNotifier":
        return cls(s.CERTCTL_SLACK_WEBHOOK_URL, s.CERTCTL_SLACK_CHANNEL, s.CERTCTL_SLACK_USERNAME)

    def __init__(self, webhook_url: str, channel_name: str = "", username: str = "certctl"):
        self.webhook_url = webhook_url
        self.channel_name = channel_name
        self.username = username

    @property
    def destination(self) -> str:
        return url_destination(self.webhook_url)

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        payload = {"text": f"*{event.subject}*\n{event.message}", "username": self.username}
        # An event's recipient (e.g. "#pki-alerts") wins over the configured default channel.
        target = event.recipient if event.recipient.startswith(("#", "@")) else self.channel_name
        if target:
            payload["channel"] = target
        return await post_json(
            client, self.webhook_url, payload, receiver="Slack webhook", url_setting="CERTCTL_SLACK_WEBHOOK_URL",
            headers={"X-Certctl-Event-ID": event.id},
        )
