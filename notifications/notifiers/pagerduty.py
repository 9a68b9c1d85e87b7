from typing import TYPE_CHECKING

import httpx

from notifications.notifiers.base import ConfigField, DeliveryResult, Notifier
from notifications.notifiers.http import post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent

# Event severity (DESIGN §2) to PagerDuty Events v2 severity.
_SEVERITY = {"informational": "info", "warning": "warning", "critical": "critical"}


URL = ConfigField("url", setting="CERTCTL_PAGERDUTY_URL", kind="url")
# A stored destination that gives no url uses PagerDuty's (CERTCTL_PAGERDUTY_URL's default).
EVENTS_API_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyNotifier(Notifier):
    """PagerDuty Events API v2 trigger; dedup_key is the event id so a repeated send is one incident."""

    channel = "PagerDuty"
    fields = (
        ConfigField("routing_key", setting="CERTCTL_PAGERDUTY_ROUTING_KEY", required=True, secret=True),
        URL,
        ConfigField(
            "default_severity", setting="CERTCTL_PAGERDUTY_SEVERITY", choices=("critical", "error", "warning", "info")
        ),
    )

    def __init__(self, routing_key: str, url: str = EVENTS_API_URL, default_severity: str = "warning"):
        self.routing_key = routing_key
        self.url = url
        self.default_severity = default_severity

    @property
    def destination(self) -> str:
        return url_destination(self.url)

    async def send(self, event: "NotificationEvent", client: httpx.AsyncClient) -> DeliveryResult:
        payload = {
            "routing_key": self.routing_key,
            "event_action": "trigger",
            "dedup_key": event.id,
            "payload": {
                "summary": f"{event.subject} — {event.message}"[:1024],
                "source": event.certificate_id or "certctl",
                "severity": _SEVERITY.get(event.severity or "", self.default_severity),
                "component": "certctl",
                "class": event.type,
                "custom_details": {"message": event.message, "recipient": event.recipient, "event_id": event.id},
            },
        }
        return await post_json(
            client, self.url, payload, receiver="PagerDuty Events API", url_field=URL,
            headers={"X-Certctl-Event-ID": event.id}, secrets=(self.routing_key,),
        )
