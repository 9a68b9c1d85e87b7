from typing import TYPE_CHECKING

import httpx

from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier
from notifications.notifiers.http import post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent


URL = ConfigField("webhook_url", setting="CERTCTL_SLACK_WEBHOOK_URL", required=True, secret=True, kind="url")


class SlackNotifier(Notifier):
    """Slack incoming webhook."""

    channel = "Slack"
    fields = (
        URL,
        ConfigField("channel_name", setting="CERTCTL_SLACK_CHANNEL"),
        ConfigField("username", setting="CERTCTL_SLACK_USERNAME"),
    )

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
            client, self.webhook_url, payload, receiver="Slack webhook", url_field=URL,
            headers={"X-Certctl-Event-ID": event.id},
        )
