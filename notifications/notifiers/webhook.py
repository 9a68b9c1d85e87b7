import hashlib
import hmac
import json
from typing import TYPE_CHECKING

import httpx

from notifications.notifiers.base import DeliveryResult, Notifier, post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent


def event_payload(event: "NotificationEvent") -> dict[str, str | None]:
    return {
        "id": event.id,
        "type": event.type,
        "certificate_id": event.certificate_id,
        "channel": event.channel,
        "recipient": event.recipient,
        "subject": event.subject,
        "message": event.message,
        "severity": event.severity,
        "created_at": event.created_at.isoformat() if event.created_at else None,
    }


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookNotifier(Notifier):
    """JSON POST to CERTCTL_WEBHOOK_URL, signed with HMAC-SHA256 when a secret is set."""

    channel = "Webhook"

    def __init__(self, url: str, secret: str = ""):
        self.url = url
        self.secret = secret

    @property
    def destination(self) -> str:
        return url_destination(self.url)

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        body = json.dumps(event_payload(event), separators=(",", ":")).encode()
        headers = {"X-Certctl-Event-ID": event.id, "X-Certctl-Event-Type": event.type}
        if self.secret:
            headers["X-Certctl-Signature"] = signature(self.secret, body)
        return await post_json(
            client, self.url, None, receiver="Webhook receiver", url_setting="CERTCTL_WEBHOOK_URL",
            headers=headers, body=body, secrets=(self.secret,),
        )
