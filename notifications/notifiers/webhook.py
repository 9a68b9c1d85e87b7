import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier
from notifications.notifiers.http import post_json, url_destination

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


STANDARD_SECRET_PREFIX = "whsec_"
WHSEC_NOT_BASE64 = "starts with whsec_ but the rest is not base64"


def standard_webhooks_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks signature: the base64-decoded rest of a whsec_ secret, else the
    secret's UTF-8 bytes."""
    if secret.startswith(STANDARD_SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(STANDARD_SECRET_PREFIX), validate=True)
        except binascii.Error:
            raise ValueError(f"CERTCTL_WEBHOOK_SECRET {WHSEC_NOT_BASE64}") from None
    return secret.encode()


def standard_webhooks_headers(secret: str, message_id: str, body: bytes, timestamp: int) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature per the Standard Webhooks specification:
    v1,<base64 of HMAC-SHA256 over "{id}.{timestamp}.{body}">."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_webhooks_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }


URL = ConfigField("url", setting="CERTCTL_WEBHOOK_URL", required=True, secret=True, kind="url")
SECRET = ConfigField("secret", setting="CERTCTL_WEBHOOK_SECRET", secret=True)


class WebhookNotifier(Notifier):
    """JSON POST to CERTCTL_WEBHOOK_URL. With a secret, signed twice: X-Certctl-Signature (certctl's hex HMAC of the
    body) and the Standard Webhooks headers, which receivers can check with a standardwebhooks library."""

    channel = "Webhook"
    fields = (URL, SECRET)

    @classmethod
    def extra_problems(cls, config: Mapping[str, Any]) -> dict[str, str]:
        secret = config.get(SECRET.name) or ""
        try:
            standard_webhooks_key(secret)
        except ValueError:
            return {SECRET.name: f"{WHSEC_NOT_BASE64}; give the whole whsec_ secret, or one without the prefix"}
        return {}

    def __init__(self, url: str, secret: str = "", clock: Callable[[], float] = time.time):
        self.url = url
        self.secret = secret
        self.clock = clock

    @property
    def destination(self) -> str:
        return url_destination(self.url)

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        body = json.dumps(event_payload(event), separators=(",", ":")).encode()
        headers = {"X-Certctl-Event-ID": event.id, "X-Certctl-Event-Type": event.type}
        if self.secret:
            headers["X-Certctl-Signature"] = signature(self.secret, body)
            try:
                headers.update(standard_webhooks_headers(self.secret, event.id, body, int(self.clock())))
            except ValueError as exc:
                return DeliveryResult.permanent_failure(
                    f"Webhook channel: {exc}; fix it or use a secret without the prefix"
                )
        return await post_json(
            client, self.url, None, receiver="Webhook receiver", url_field=URL,
            headers=headers, body=body, secrets=(self.secret,),
        )
