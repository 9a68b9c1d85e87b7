"""certctl's own clients against this service, call for call: its web client (web/src/api/client.ts and the
NotificationsPage that uses it) and its MCP server's REST calls (internal/mcp), with an admin and a read-only key.

The requests are sent as those clients send them: `fetch` with `Authorization: Bearer`, POSTs with no body and
no Content-Type, the query strings they build. The assertions read the fields their code reads.
"""
import pytest
from django.test import Client

from notifications.models import NotificationEvent
from notifications.queries.events import get_event
from tests.api.conftest import ADMIN_KEY, READ_KEY

pytestmark = pytest.mark.django_db

KEYS = {"admin": ADMIN_KEY, "viewer": READ_KEY}
# What NotificationsPage and NotificationRow read from each event.
FIELDS_THE_PAGE_READS = {
    "id", "type", "status", "channel", "message", "recipient", "created_at", "certificate_id", "retry_count",
    "last_error",
}


class CertctlWebClient:
    """client.ts: getNotifications, getNotification, markNotificationRead, requeueNotification."""

    def __init__(self, key):
        self.http = Client(headers={"Authorization": f"Bearer {key}"})

    def get_notifications(self, **params):
        query = {"page": "1", "per_page": "50", **params}
        return self.http.get("/api/v1/notifications", query)

    def get_notification(self, event_id):
        return self.http.get(f"/api/v1/notifications/{event_id}")

    def mark_read(self, event_id):
        return self.http.generic("POST", f"/api/v1/notifications/{event_id}/read")

    def requeue(self, event_id):
        return self.http.generic("POST", f"/api/v1/notifications/{event_id}/requeue")


def unread_count(page):
    """NotificationsPage's count of unread rows: certctl's UI treats every row whose status is not "read" as unread."""
    return sum(1 for n in page["data"] if n["status"] != "read")


@pytest.fixture
def inbox(make_event, dead_event):
    """A dead event plus two pending ones, as a certctl inbox would hold them."""
    return {"dead": dead_event, "pending": [make_event(certificate_id="mc-1"), make_event(certificate_id="mc-2")]}


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_mark_read_flow_as_the_notifications_page_runs_it(role, inbox):
    web = CertctlWebClient(KEYS[role])
    page = web.get_notifications(per_page="100").json()
    assert page["total"] == 3
    assert set(page["data"][0]) >= FIELDS_THE_PAGE_READS
    assert unread_count(page) == 3
    target = inbox["pending"][0].id

    response = web.mark_read(target)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "marked_as_read"}

    # The page refetches: the row now shows as read, without its "Mark read" button, and the count drops.
    page = web.get_notifications(per_page="100").json()
    row = next(n for n in page["data"] if n["id"] == target)
    assert row["status"] == "read"
    assert unread_count(page) == 2
    assert web.get_notification(target).json()["status"] == "read"
    # certctl's filter values, including "read" from its generated enum.
    assert [n["id"] for n in web.get_notifications(status="read").json()["data"]] == [target]
    assert {n["id"] for n in web.get_notifications(status="pending").json()["data"]} == {inbox["pending"][1].id}
    # Unlike certctl, the read event is still delivered: the delivery state says so.
    assert row["delivery_status"] == "pending"


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_dead_letter_tab_and_dismiss(role, inbox):
    web = CertctlWebClient(KEYS[role])
    dead_tab = web.get_notifications(per_page="100", status="dead").json()
    assert [n["id"] for n in dead_tab["data"]] == [inbox["dead"].id]
    row = dead_tab["data"][0]
    assert (row["status"], row["retry_count"]) == ("dead", 1)
    assert row["last_error"]

    assert web.mark_read(inbox["dead"].id).status_code == 200
    assert web.get_notifications(per_page="100", status="dead").json()["total"] == 0
    summary = web.http.get("/api/v1/stats/summary").json()
    assert (summary["notifications_dead"], summary["notifications_dead_unacknowledged"]) == (1, 0)


def test_requeue_from_the_dead_letter_tab_needs_an_admin_key(inbox):
    dead_id = inbox["dead"].id
    refused = CertctlWebClient(READ_KEY).requeue(dead_id)
    # certctl's fetchJSON shows body.message: it must say why.
    assert refused.status_code == 403
    assert "admin key" in refused.json()["message"]
    assert get_event(dead_id).status == "dead"

    done = CertctlWebClient(ADMIN_KEY).requeue(dead_id)
    assert (done.status_code, done.json()) == (200, {"status": "requeued"})
    event = CertctlWebClient(ADMIN_KEY).get_notification(dead_id).json()
    assert (event["status"], event["delivery_status"], event["read_at"]) == ("pending", "pending", None)


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_certctl_mcp_server_calls(role, inbox):
    """internal/mcp/tools_resources.go: list (with its status filter), get, mark read, requeue; JSON Accept header."""
    http = Client(headers={"Authorization": f"Bearer {KEYS[role]}", "Accept": "application/json"})
    listed = http.get("/api/v1/notifications", {"status": "dead"})
    assert listed.status_code == 200
    assert listed.json()["total"] == 1
    event_id = inbox["pending"][1].id
    assert http.get(f"/api/v1/notifications/{event_id}").json()["id"] == event_id
    assert http.post(f"/api/v1/notifications/{event_id}/read").json() == {"status": "marked_as_read"}
    requeue = http.post(f"/api/v1/notifications/{inbox['dead'].id}/requeue")
    assert requeue.status_code == (200 if role == "admin" else 403)
    actor = NotificationEvent.objects.get(id=event_id).operator_actions.get().actor
    assert actor == {"admin": "oncall", "viewer": "dashboard"}[role]


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_unknown_key_and_unknown_id_answer_as_certctl_clients_expect(role, inbox):
    assert Client(headers={"Authorization": "Bearer wrong"}).get("/api/v1/notifications").status_code == 401
    web = CertctlWebClient(KEYS[role])
    missing = web.mark_read("notif-unknown")
    assert missing.status_code == 404
    assert missing.json()["message"] == "notification notif-unknown not found"
    assert web.get_notification("notif-unknown").status_code == 404


@pytest.mark.parametrize("role", ["admin", "viewer"])
@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/notifications/notif-1/read/"])
def test_a_post_to_an_unknown_api_path_is_a_json_404_not_a_csrf_page(role, path):
    response = CertctlWebClient(KEYS[role]).http.generic("POST", path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == "Not Found"
