from typing import TYPE_CHECKING, Any

import httpx

from notifications.notifiers.base import DeliveryResult, Notifier, post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent


class TeamsNotifier(Notifier):
    """Microsoft Teams Workflows webhook with an Adaptive Card (the retired connector cards are not used)."""

    channel = "Teams"
    required_settings = ("CERTCTL_TEAMS_WEBHOOK_URL",)
    secret_url_settings = ("CERTCTL_TEAMS_WEBHOOK_URL",)

    @classmethod
    def from_settings(cls, s: Any) -> "TeamsNotifier":
        return cls(s.CERTCTL_TEAMS_WEBHOOK_URL)

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
            client, self.webhook_url, payload, receiver="Teams workflow", url_setting="CERTCTL_TEAMS_WEBHOOK_URL",
            headers={"X-Certctl-Event-ID": event.id},
        )
