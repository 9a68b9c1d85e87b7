"""The original certctl's API faults (DESIGN §8) that this service must not reproduce."""
import pytest

from notifications.engine import passes
from notifications.models import NotificationEvent
from notifications.queries.events import get_event
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_fault_3_get_finds_any_event_not_only_newest(admin, make_event):
    oldest, middle, newest = make_event(), make_event(), make_event()
    for event in (oldest, middle, newest):
        response = admin.get(f"/api/v1/notifications/{event.id}")
        assert response.status_code == 200
        assert response.json()["id"] == event.id


def test_fault_4_total_is_real_count(admin, make_event):
    for _ in range(7):
        make_event()
    body = admin.get("/api/v1/notifications?per_page=2").json()
    assert len(body["data"]) == 2
    assert body["total"] == 7
    assert admin.get("/api/v1/notifications?per_page=2&page=4").json()["total"] == 7


def test_fault_5_per_page_above_500_is_clamped_to_500(admin):
    NotificationEvent.objects.bulk_create(
        NotificationEvent(type="ExpirationWarning", channel="Email", recipient="ops@example.com", message=f"m{n}")
        for n in range(501)
    )
    for asked in (501, 1000, 10**9):
        body = admin.get(f"/api/v1/notifications?per_page={asked}").json()
        assert body["per_page"] == 500
        assert len(body["data"]) == 500
        assert body["total"] == 501


def test_fault_11_mark_read_unknown_id_is_404(admin):
    response = admin.post("/api/v1/notifications/notif-does-not-exist/read")
    assert_error(response, 404, "Not Found", "notification notif-does-not-exist not found")


def test_fault_2_requeue_sent_is_409_and_not_redelivered(admin, sent_event, webhook):
    assert len(webhook.requests) == 1
    response = admin.post(f"/api/v1/notifications/{sent_event.id}/requeue")
    assert_error(response, 409, "Conflict", "is sent", "only failed or dead notifications can be requeued")
    bulk = admin.post("/api/v1/notifications/requeue", {"ids": [sent_event.id]}, format="json")
    assert bulk.json() == {"requeued": 0, "skipped": 1}
    passes.process_pending()
    passes.retry_sweep()
    event = get_event(sent_event.id)
    assert (event.status, event.sent_at) == ("sent", sent_event.sent_at)
    assert len(webhook.requests) == 1
