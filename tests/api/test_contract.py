"""The REST contract of DESIGN §5, endpoint by endpoint and status code by status code."""
from datetime import UTC, datetime

import pytest
import time_machine

from notifications.actors import Actor
from notifications.engine import passes
from notifications.models import NotificationEvent, OperatorAction
from notifications.operations.events import mark_read
from notifications.queries.events import get_event
from tests.api.conftest import assert_error
from tests.deliveries import deliver_now

pytestmark = pytest.mark.django_db

EVENT_FIELDS = {
    "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
    "retry_count", "next_retry_at", "last_error", "sent_at", "created_at", "updated_at", "read_at", "dedup_key",
    "destination", "labels",
}
NEW_EVENT = {
    "type": "ExpirationWarning",
    "channel": "Webhook",
    "recipient": "ops@example.com",
    "message": "api.example.com expires in 7 days",
    "certificate_id": "mc-api-prod",
    "severity": "warning",
}


def iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


def at(minute):
    return datetime(2026, 11, 2, 9, minute, tzinfo=UTC)


# --- list ---------------------------------------------------------------------------------


def test_list_envelope_and_event_fields(admin, make_event):
    with time_machine.travel(at(0), tick=False):
        event = make_event(certificate_id="mc-1", severity="critical", dedup_key="k-1")
    response = admin.get("/api/v1/notifications")
    assert response.status_code == 200
    assert response["X-Request-ID"]
    body = response.json()
    assert set(body) == {"data", "total", "page", "per_page"}
    assert (body["total"], body["page"], body["per_page"]) == (1, 1, 50)
    assert body["data"] == [
        {
            "id": event.id,
            "type": "ExpirationWarning",
            "certificate_id": "mc-1",
            "channel": "Webhook",
            "recipient": "ops@example.com",
            "message": "api.example.com expires in 7 days",
            "severity": "critical",
            "status": "pending",
            "delivery_status": "pending",
            "retry_count": 0,
            "next_retry_at": None,
            "last_error": None,
            "sent_at": None,
            "created_at": iso(at(0)),
            "updated_at": iso(at(0)),
            "read_at": None,
            "dedup_key": "k-1",
            "destination": "Webhook",
            "labels": {},
        }
    ]


def test_list_is_newest_first_with_id_breaking_ties(admin, make_event):
    with time_machine.travel(at(1), tick=False):
        oldest = make_event()
    with time_machine.travel(at(3), tick=False):
        same_time = sorted([make_event().id, make_event().id], reverse=True)
    with time_machine.travel(at(2), tick=False):
        middle = make_event()
    ids = [item["id"] for item in admin.get("/api/v1/notifications").json()["data"]]
    assert ids == [*same_time, middle.id, oldest.id]


def test_list_pages_are_stable_and_disjoint(admin, make_event):
    for minute in range(5):
        with time_machine.travel(at(minute), tick=False):
            make_event()
    pages = [admin.get(f"/api/v1/notifications?per_page=2&page={page}").json() for page in (1, 2, 3)]
    ids = [item["id"] for page in pages for item in page["data"]]
    assert [len(page["data"]) for page in pages] == [2, 2, 1]
    assert len(set(ids)) == 5
    assert [page["page"] for page in pages] == [1, 2, 3]
    assert all(page["total"] == 5 and page["per_page"] == 2 for page in pages)


def test_list_page_past_the_end_is_empty_with_the_real_total(admin, make_event):
    make_event()
    body = admin.get("/api/v1/notifications?page=99").json()
    assert body == {"data": [], "total": 1, "page": 99, "per_page": 50}


@pytest.mark.parametrize(("given", "used"), [("0", 1), ("-3", 1), ("1", 1), ("500", 500), ("501", 500)])
def test_per_page_is_clamped_to_1_through_500(admin, make_event, given, used):
    make_event()
    assert admin.get(f"/api/v1/notifications?per_page={given}").json()["per_page"] == used


def test_filters_by_status_channel_type_certificate_and_read(admin, make_event, dead_event):
    slack = make_event(channel="Slack", type="RenewalFailure", certificate_id="mc-9")
    mark_read(slack.id, Actor("t", "test"))

    def ids(query):
        return {item["id"] for item in admin.get(f"/api/v1/notifications?{query}").json()["data"]}

    assert ids("status=dead") == {dead_event.id}
    # certctl's view: a read event has status "read", no longer its delivery state.
    assert ids("status=pending") == set()
    assert ids("status=read") == {slack.id}
    assert ids("delivery_status=pending") == {slack.id}
    assert ids("delivery_status=pending&status=read") == {slack.id}
    assert ids("channel=Slack") == {slack.id}
    assert ids("type=RenewalFailure") == {slack.id}
    assert ids("certificate_id=mc-9") == {slack.id}
    assert ids("read=true") == {slack.id}
    assert ids("read=false") == {dead_event.id}
    assert ids("status=dead&channel=Slack") == set()
    assert admin.get("/api/v1/notifications?status=dead").json()["total"] == 1


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("status=bogus", "status", "unknown status 'bogus'; expected one of pending, sent, failed, dead, read"),
        ("delivery_status=read", "delivery_status",
         "unknown delivery_status 'read'; expected one of pending, sent, failed, dead"),
        ("channel=Fax", "channel", "unknown channel 'Fax'"),
        ("type=Expired", "type", "unknown type 'Expired'"),
        ("read=maybe", "read", "read must be true or false"),
        ("page=abc", "page", "must be a whole number, got 'abc'"),
        ("page=0", "page", "must be 1 or more, got 0"),
        ("page=-2", "page", "must be 1 or more"),
        ("page=1.5", "page", "must be a whole number"),
        ("per_page=lots", "per_page", "must be a whole number"),
        ("page=", "page", "must be a whole number, got ''"),
    ],
)
def test_malformed_query_values_are_400_naming_the_parameter(admin, make_event, query, field, message):
    make_event()
    body = assert_error(admin.get(f"/api/v1/notifications?{query}"), 400, "Bad Request", message)
    assert field in body["fields"]
    assert message in body["fields"][field]


# --- create -------------------------------------------------------------------------------


def test_create_returns_201_with_the_event_and_its_location(admin):
    with time_machine.travel(at(5), tick=False):
        response = admin.post("/api/v1/notifications", NEW_EVENT, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == EVENT_FIELDS
    assert body["id"].startswith("notif-")
    for name, value in NEW_EVENT.items():
        assert body[name] == value
    assert (body["status"], body["retry_count"], body["created_at"]) == ("pending", 0, iso(at(5)))
    assert response["Location"] == f"http://testserver/api/v1/notifications/{body['id']}"
    assert NotificationEvent.objects.get(id=body["id"]).recipient == "ops@example.com"


def test_create_with_a_known_dedup_key_returns_200_and_the_existing_event(admin):
    first = admin.post("/api/v1/notifications", {**NEW_EVENT, "dedup_key": "mc-api-prod-7d"}, format="json")
    again = admin.post(
        "/api/v1/notifications", {**NEW_EVENT, "message": "other text", "dedup_key": "mc-api-prod-7d"}, format="json"
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert NotificationEvent.objects.count() == 1


def test_create_accepts_a_client_id(admin):
    response = admin.post("/api/v1/notifications", {**NEW_EVENT, "id": "notif-from-certctl-1"}, format="json")
    assert response.status_code == 201
    assert admin.get("/api/v1/notifications/notif-from-certctl-1").json()["id"] == "notif-from-certctl-1"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"type": "Expired"}, "type", 'unknown type "Expired"; expected one of ExpirationWarning'),
        ({"channel": "Fax"}, "channel", 'unknown channel "Fax"; expected one of Email, Webhook'),
        ({"recipient": ""}, "recipient", "must not be empty"),
        ({"recipient": "   "}, "recipient", "must not be empty"),
        ({"message": ""}, "message", "must not be empty"),
        ({"severity": "meh"}, "severity", 'unknown severity "meh"'),
        ({"id": "has/slash"}, "id", "letters, digits"),
        ({"id": ".."}, "id", "starting with a letter or digit"),
        ({"id": "-x"}, "id", "starting with a letter or digit"),
        ({"id": "requeue"}, "id", "reserved"),
        ({"id": "requeue-group"}, "id", "reserved"),
        ({"type": None}, "type", "may not be null"),
        ({"recipient": 42}, "recipient", "must be a string"),
        ({"dedup_key": 0}, "dedup_key", "must be a string"),
    ],
)
def test_create_rejects_bad_fields_with_a_message_per_field(admin, change, field, message):
    response = admin.post("/api/v1/notifications", {**NEW_EVENT, **change}, format="json")
    body = assert_error(response, 400, "Bad Request", field, message)
    assert message in body["fields"][field]
    assert NotificationEvent.objects.count() == 0


def test_create_missing_fields_are_each_named(admin):
    body = assert_error(admin.post("/api/v1/notifications", {}, format="json"), 400, "Bad Request")
    assert set(body["fields"]) == {"type", "channel", "recipient", "message"}


def test_create_oversize_message_is_400_with_the_limit(admin, settings):
    settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = 10
    response = admin.post("/api/v1/notifications", {**NEW_EVENT, "message": "é" * 6}, format="json")
    body = assert_error(response, 400, "Bad Request", "12 bytes; the limit is 10")
    assert "CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES" in body["fields"]["message"]


def test_create_with_an_id_that_exists_is_409(admin, make_event):
    existing = make_event()
    response = admin.post("/api/v1/notifications", {**NEW_EVENT, "id": existing.id}, format="json")
    assert_error(response, 409, "Conflict", f"notification {existing.id} already exists")
    assert NotificationEvent.objects.get().message == existing.message


def test_create_malformed_json_is_400(admin):
    response = admin.post("/api/v1/notifications", data="{not json", content_type="application/json")
    assert_error(response, 400, "Bad Request", "JSON parse error")


def test_create_non_json_body_is_415(admin):
    response = admin.post("/api/v1/notifications", data="type=ExpirationWarning", content_type="text/plain")
    assert_error(response, 415, "Unsupported Media Type", "text/plain")


def test_create_body_that_is_not_an_object_is_400(admin):
    response = admin.post("/api/v1/notifications", [NEW_EVENT], format="json")
    assert_error(response, 400, "Bad Request", "Expected a dictionary")


# --- get one, attempts ----------------------------------------------------------------------


def test_get_returns_the_event(admin, dead_event):
    response = admin.get(f"/api/v1/notifications/{dead_event.id}")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == EVENT_FIELDS
    assert (body["id"], body["status"], body["retry_count"]) == (dead_event.id, "dead", 1)
    assert "Webhook" in body["last_error"]
    assert body["next_retry_at"] is None


@pytest.mark.parametrize("suffix", ["", "/attempts"])
def test_unknown_id_is_404(admin, suffix):
    response = admin.get(f"/api/v1/notifications/notif-nope{suffix}")
    assert_error(response, 404, "Not Found", "notification notif-nope not found")


def test_attempts_lists_every_attempt_oldest_first(admin, failed_event, settings, closed_port):
    settings.CERTCTL_WEBHOOK_URL = f"http://127.0.0.1:{closed_port}/hook"
    deliver_now(failed_event.id, now=failed_event.next_retry_at)
    response = admin.get(f"/api/v1/notifications/{failed_event.id}/attempts")
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["page"], body["per_page"]) == (2, 1, 50)
    first, second = body["data"]
    assert set(first) == {
        "notification_id", "number", "started_at", "duration_ms", "outcome", "error", "http_status", "resulting_status"
    }
    assert (first["notification_id"], first["number"], first["outcome"], first["resulting_status"]) == (
        failed_event.id, 1, "transient_failure", "failed",
    )
    assert second["number"] == 2
    assert first["error"]
    assert first["http_status"] is None


def test_attempts_of_a_new_event_is_empty(admin, make_event):
    event = make_event()
    assert admin.get(f"/api/v1/notifications/{event.id}/attempts").json() == {
        "data": [], "total": 0, "page": 1, "per_page": 50,
    }


# --- mark read ----------------------------------------------------------------------------


def test_mark_read_records_the_time_and_the_key_name(admin, dead_event):
    with time_machine.travel(at(30), tick=False):
        response = admin.post(f"/api/v1/notifications/{dead_event.id}/read")
    assert response.status_code == 200
    assert response.json() == {"status": "marked_as_read"}
    event = get_event(dead_event.id)
    assert (event.read_at, event.status) == (at(30), "dead")
    action = OperatorAction.objects.get(event=event)
    assert (action.action, action.actor, action.source) == ("mark_read", "oncall", "api")


def test_mark_read_twice_keeps_the_first_time(admin, dead_event):
    with time_machine.travel(at(30), tick=False):
        admin.post(f"/api/v1/notifications/{dead_event.id}/read")
    with time_machine.travel(at(40), tick=False):
        second = admin.post(f"/api/v1/notifications/{dead_event.id}/read")
    assert second.json() == {"status": "marked_as_read"}
    assert get_event(dead_event.id).read_at == at(30)


# --- requeue one ----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["dead_event", "failed_event"])
def test_requeue_moves_failed_or_dead_back_to_pending(admin, request, fixture):
    event = request.getfixturevalue(fixture)
    response = admin.post(f"/api/v1/notifications/{event.id}/requeue")
    assert response.status_code == 200
    assert response.json() == {"status": "requeued"}
    after = admin.get(f"/api/v1/notifications/{event.id}").json()
    assert (after["status"], after["retry_count"], after["next_retry_at"], after["last_error"]) == (
        "pending", 0, None, None,
    )
    action = OperatorAction.objects.get(event_id=event.id)
    assert (action.action, action.actor, action.source, action.previous_status) == (
        "requeue", "oncall", "api", fixture.split("_")[0],
    )


def test_requeued_event_is_delivered(admin, dead_event, request):
    webhook = request.getfixturevalue("webhook")  # configured only now: the first delivery had no notifier
    admin.post(f"/api/v1/notifications/{dead_event.id}/requeue")
    passes.process_pending()
    assert admin.get(f"/api/v1/notifications/{dead_event.id}").json()["status"] == "sent"
    assert len(webhook.requests) == 1
    assert dead_event.id.encode() in webhook.requests[0].body


def test_requeue_pending_is_409_naming_its_status(admin, make_event):
    event = make_event()
    response = admin.post(f"/api/v1/notifications/{event.id}/requeue")
    assert_error(response, 409, "Conflict", f"notification {event.id} is pending", "only failed or dead")


def test_requeue_unknown_is_404(admin):
    assert_error(admin.post("/api/v1/notifications/notif-nope/requeue"), 404, "Not Found", "notif-nope")


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_other_methods_on_requeue_and_read_are_405_with_allow(admin, dead_event, method):
    for action in ("requeue", "read"):
        response = getattr(admin, method)(f"/api/v1/notifications/{dead_event.id}/{action}")
        assert_error(response, 405, "Method Not Allowed", f"{method.upper()} is not allowed", "POST")
        assert response["Allow"] == "POST, OPTIONS"
    response = getattr(admin, method)("/api/v1/notifications/requeue")
    assert_error(response, 405, "Method Not Allowed")
    assert response["Allow"] == "POST, OPTIONS"


def test_wrong_methods_on_collection_and_item_are_405(admin, dead_event):
    response = admin.delete("/api/v1/notifications")
    assert_error(response, 405, "Method Not Allowed")
    assert response["Allow"] == "GET, POST, HEAD, OPTIONS"
    response = admin.put(f"/api/v1/notifications/{dead_event.id}", {}, format="json")
    assert_error(response, 405, "Method Not Allowed")
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert admin.post("/api/v1/stats/summary")["Allow"] == "GET, HEAD, OPTIONS"


# --- bulk requeue -------------------------------------------------------------------------


def test_bulk_requeue_by_ids_counts_requeued_and_skipped(admin, dead_event, failed_event, sent_event):
    ids = [dead_event.id, failed_event.id, sent_event.id, "notif-unknown"]
    response = admin.post("/api/v1/notifications/requeue", {"ids": ids}, format="json")
    assert response.status_code == 200
    assert response.json() == {"requeued": 2, "skipped": 2}
    statuses = {e.id: e.status for e in NotificationEvent.objects.all()}
    assert statuses == {dead_event.id: "pending", failed_event.id: "pending", sent_event.id: "sent"}
    assert set(OperatorAction.objects.values_list("actor", "bulk")) == {("oncall", True)}


def test_bulk_requeue_by_filter(admin, dead_event, make_event):
    other = make_event(channel="Slack")
    deliver_now(other.id)
    response = admin.post("/api/v1/notifications/requeue", {"status": "dead", "channel": "Webhook"}, format="json")
    assert response.json() == {"requeued": 1, "skipped": 0}
    assert get_event(dead_event.id).status == "pending"
    assert get_event(other.id).status == "dead"


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "ids", "give a list of ids, or at least one filter"),
        ({"ids": ["a"], "status": "dead"}, "ids", "not both"),
        ({"status": "gone"}, "status", "unknown status 'gone'"),
        ({"ids": "notif-1"}, "ids", "Expected a list"),
        ({"ids": [{"id": 1}]}, "ids[0]", "must be a string"),
        ({"ids": [7]}, "ids[0]", "must be a string"),
    ],
)
def test_bulk_requeue_bad_bodies_are_400(admin, body, field, message):
    response = admin.post("/api/v1/notifications/requeue", body, format="json")
    result = assert_error(response, 400, "Bad Request", message)
    assert message in result["fields"][field]


def test_bulk_requeue_takes_at_most_10000_ids(admin, dead_event):
    ids = [dead_event.id] + [f"notif-{n}" for n in range(10_000)]
    response = admin.post("/api/v1/notifications/requeue", {"ids": ids}, format="json")
    assert_error(response, 400, "Bad Request", "at most 10000 ids per call")
    assert get_event(dead_event.id).status == "dead"
    exactly = admin.post("/api/v1/notifications/requeue", {"ids": ids[:10_000]}, format="json")
    assert exactly.json() == {"requeued": 1, "skipped": 9_999}


# --- stats ----------------------------------------------------------------------------------


def test_stats_summary_counts_per_status(admin, dead_event, failed_event, sent_event, make_event):
    make_event()
    with time_machine.travel(failed_event.next_retry_at, tick=False):
        response = admin.get("/api/v1/stats/summary")
    assert response.status_code == 200
    assert response.json() == {
        "notifications_total": 4,
        "notifications_pending": 1,
        "notifications_sent": 1,
        "notifications_failed": 1,
        "notifications_dead": 1,
        "notifications_dead_unacknowledged": 1,
        "notifications_unread": 4,
        "oldest_due_retry_at": iso(failed_event.next_retry_at),
        "oldest_due_retry_age_seconds": 0,
        "completed_at": iso(failed_event.next_retry_at),
    }


# --- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/notifications/", "/api/v1/nothing", "/api/v2/notifications"])
def test_unknown_api_paths_are_json_404(admin, path):
    assert_error(admin.get(path), 404, "Not Found", "no API endpoint", "no trailing slash")


def test_ids_with_dots_and_colons_route(admin, make_event):
    event = make_event(event_id="certctl:notif.42")
    assert admin.get("/api/v1/notifications/certctl:notif.42").json()["id"] == event.id
    assert admin.post("/api/v1/notifications/certctl:notif.42/read").status_code == 200


# --- bulk mark read / dismiss ---------------------------------------------------------------


def test_bulk_read_by_ids_counts_marked_and_skipped(reader, dead_event, make_event):
    pending = make_event()
    mark_read(pending.id, Actor("t", "test"))
    response = reader.post(
        "/api/v1/notifications/read", {"ids": [dead_event.id, pending.id, "notif-nope"]}, format="json"
    )
    assert (response.status_code, response.json()) == (200, {"marked_read": 1, "skipped": 2})
    action = OperatorAction.objects.get(event_id=dead_event.id)
    assert (action.action, action.actor, action.source, action.bulk, action.previous_status) == (
        "mark_read", "dashboard", "api", True, "dead"
    )
    assert reader.get(f"/api/v1/notifications/{dead_event.id}").json()["status"] == "read"


def test_bulk_read_by_filter_dismisses_the_dead_letter_queue(admin, dead_event, failed_event, make_event):
    pending = make_event(channel="Slack")
    response = admin.post("/api/v1/notifications/read", {"status": "dead", "channel": "Webhook"}, format="json")
    assert response.json() == {"marked_read": 1, "skipped": 0}
    assert admin.get("/api/v1/notifications?status=dead").json()["total"] == 0
    assert admin.get("/api/v1/notifications?delivery_status=dead").json()["total"] == 1
    # Reading never touches delivery.
    assert get_event(failed_event.id).read_at is None
    assert get_event(pending.id).read_at is None
    assert admin.post("/api/v1/notifications/read", {"delivery_status": "failed"}, format="json").json() == {
        "marked_read": 1, "skipped": 0
    }
    failed = admin.get(f"/api/v1/notifications/{failed_event.id}").json()
    assert (failed["status"], failed["delivery_status"], failed["next_retry_at"]) == (
        "read", "failed", iso(failed_event.next_retry_at)
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "ids", "give a list of ids, or at least one filter"),
        ({"ids": ["a"], "status": "dead"}, "ids", "not both"),
        ({"status": "gone"}, "status", "unknown status 'gone'"),
        ({"delivery_status": "read"}, "delivery_status", "unknown delivery_status 'read'"),
        ({"dismissed": True}, "dismissed", "unknown field"),
    ],
)
def test_bulk_read_with_bad_input_is_400(reader, dead_event, body, field, message):
    result = assert_error(reader.post("/api/v1/notifications/read", body, format="json"), 400, "Bad Request")
    assert message in result["fields"][field]
    assert get_event(dead_event.id).read_at is None


def test_read_is_a_reserved_id(admin):
    body = {"type": "ExpirationWarning", "channel": "Email", "recipient": "a@example.com", "message": "m", "id": "read"}
    result = assert_error(admin.post("/api/v1/notifications", body, format="json"), 400, "Bad Request")
    assert "reserved" in result["fields"]["id"]
