from typing import TYPE_CHECKING

import httpx

from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier
from notifications.notifiers.http import post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent


URL = ConfigField("webhook_url", setting="CERTCTL_TEAMS_WEBHOOK_URL", required=True, secret=True, kind="url")


class TeamsNotifier(Notifier):
    """Microsoft Teams Workflows webhook with an Adaptive Card (the retired connector cards are not used)."""

    channel = "Teams"
    fields = (URL,)

    def __init__(self, webhook_url: str):
        self.webhook_url = webhook_url

    @property
    def destination(self) -> str:
        return url_destination(self.webhook_url)

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        facts = [{"title": "Type", "value": event.type}, {"title": "Event", "value": event.id}]
        if event.certificate_id:
            facts.append({"title": "Certificate", "value": event.certificate_id})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": [
                {"type": "TextBlock", "text": event.subject, "weight": "Bolder", "size": "Medium", "wrap": True},
                {"type": "TextBlock", "text": event.message, "wrap": True},
                {"type": "FactSet", "facts": facts},
            ],
        }
        payload = {
            "type": "message",
            "attachments": [
                {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
            ],
        }
        return await post_json(
            client, self.webhook_url, payload, receiver="Teams workflow", url_field=URL,
            headers={"X-Certctl-Event-ID": event.id},
        )
