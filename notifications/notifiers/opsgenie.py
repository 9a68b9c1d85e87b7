from typing import TYPE_CHECKING

import httpx

from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier
from notifications.notifiers.http import post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent

# Event severity (DESIGN §2) to OpsGenie priority.
_PRIORITY = {"informational": "P5", "warning": "P3", "critical": "P1"}


URL = ConfigField("url", setting="CERTCTL_OPSGENIE_URL", kind="url")
# OpsGenie keeps an account's alerts in one region; without an explicit url the region chooses the endpoint.
REGION_URLS = {"us": "https://api.opsgenie.com/v2/alerts", "eu": "https://api.eu.opsgenie.com/v2/alerts"}


class OpsGenieNotifier(Notifier):
    """OpsGenie Alert API; alias is the event id so a repeated send is one alert."""

    channel = "OpsGenie"
    fields = (
        ConfigField("api_key", setting="CERTCTL_OPSGENIE_API_KEY", required=True, secret=True),
        ConfigField("region", setting="CERTCTL_OPSGENIE_REGION", choices=tuple(REGION_URLS)),
        URL,
        ConfigField("default_priority", setting="CERTCTL_OPSGENIE_PRIORITY", choices=("P1", "P2", "P3", "P4", "P5")),
    )

    def __init__(self, api_key: str, url: str = "", default_priority: str = "P3", region: str = "us"):
        self.api_key = api_key
        self.region = region or "us"
        self.url = url or REGION_URLS[self.region]
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
            client, self.url, payload, receiver="OpsGenie Alert API", url_field=URL,
            headers={"Authorization": f"GenieKey {self.api_key}", "X-Certctl-Event-ID": event.id},
            secrets=(self.api_key,),
        )
