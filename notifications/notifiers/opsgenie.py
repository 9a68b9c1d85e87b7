from typing import TYPE_CHECKING, Any

import httpx

from notifications.notifiers.base import DeliveryResult, Notifier, post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent

# Event severity (DESIGN §2) to OpsGenie priority.
_PRIORITY = {"informational": "P5", "warning": "P3", "critical": "P1"}


class OpsGenieNotifier(Notifier):
    """OpsGenie Alert API; alias is the event id so a repeated send is one alert."""

    channel = "OpsGenie"
    required_settings = ("CERTCTL_OPSGENIE_API_KEY",)
    secret_settings = ("CERTCTL_OPSGENIE_API_KEY",)
    url_settings = ("CERTCTL_OPSGENIE_URL",)

    @classmethod
    def from_settings(cls, s: Any) -> "OpsGenieNotifier":
        return cls(s.CERTCTL_OPSGENIE_API_KEY, s.CERTCTL_OPSGENIE_URL, s.CERTCTL_OPSGENIE_PRIORITY)

    def __init__(self, api_key: str, url: str, default_priority: str = "P3"):
        self.api_key = api_key
        self.url = url
        self.default_priority = default_priority

    @property
    def destination(self) -> str:
        return url_destination(self.url)

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        payload = {
            "message": event.subject[:130],
            "alias": event.id,
            "description": event.message[:15000],
            "priority": _PRIORITY.get(event.severity or "", self.default_priority),
            "source": "certctl",
            "tags": ["certctl", event.type],
            "details": {"certificate_id": event.certificate_id or "", "recipient": event.recipient},
        }
        return await post_json(
            client, self.url, payload, receiver="OpsGenie Alert API", url_setting="CERTCTL_OPSGENIE_URL",
            headers={"Authorization": f"GenieKey {self.api_key}", "X-Certctl-Event-ID": event.id},
            secrets=(self.api_key,),
        )
