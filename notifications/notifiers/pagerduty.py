from typing import TYPE_CHECKING, Any

import httpx

from notifications.notifiers.base import DeliveryResult, Notifier, post_json, url_destination

if TYPE_CHECKING:
    from notifications.models import NotificationEvent

# Event severity (DESIGN §2) to PagerDuty Events v2 severity.
_SEVERITY = {"informational": "info", "warning": "warning", "critical": "critical"}


class PagerDutyNotifier(Notifier):
    """PagerDuty Events API v2 trigger; dedup_key is the event id so a repeated send is one incident."""

    channel = "PagerDuty"
    required_settings = ("CERTCTL_PAGERDUTY_ROUTING_KEY",)
    secret_settings = ("CERTCTL_PAGERDUTY_ROUTING_KEY",)
    url_settings = ("CERTCTL_PAGERDUTY_URL",)

    @classmethod
    def from_settings(cls, s: Any) -> "PagerDutyNotifier":
        return cls(s.CERTCTL_PAGERDUTY_ROUTING_KEY, s.CERTCTL_PAGERDUTY_URL, s.CERTCTL_PAGERDUTY_SEVERITY)

    def __init__(self, routing_key: str, url: str, default_severity: str = "warning"):
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
            client, self.url, payload, receiver="PagerDuty Events API", url_setting="CERTCTL_PAGERDUTY_URL",
            headers={"X-Certctl-Event-ID": event.id}, secrets=(self.routing_key,),
        )
