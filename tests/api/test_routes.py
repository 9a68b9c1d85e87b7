"""/api/v1/routes, /api/v1/routes/test and /api/v1/alerts: answers, codes, permissions, audit."""
import pytest

from notifications.models import ConfigurationAction, Destination, NotificationEvent, Route
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db

ALERT = {
    "type": "ExpirationWarning", "message": "api.example.com expires in 7 days", "certificate_id": "mc-api-prod",
    "severity": "warning", "labels": {"team": "payments"},
}


@pytest.fixture
def destinations(db):
    Destination.objects.ensure_environment()
    for name in ("payments-hook", "edge-hook"):
        Destination.objects.create(name=name, channel="Webhook", config={"url": f"http://127.0.0.1:9/{name}"})


def make_route(admin, **fields):
    body = {"name": "payments", "match": {"labels": {"team": "payments"}}, "destinations": ["payments-hook"], **fields}
    response = admin.post("/api/v1/routes", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_create_answers_the_route_and_audits_the_key(admin, destinations):
    route = make_route(admin, continue_matching=True)
    assert {key: route[key] for key in ("name", "position", "match", "destinations", "continue_matching",
                                        "enabled", "is_default")} == {
        "name": "payments", "position": 0, "match": {"labels": {"team": "payments"}},
        "destinations": ["payments-hook"], "continue_matching": True, "enabled": True, "is_default": False,
    }
    action = ConfigurationAction.objects.get()
    assert (action.target, action.action, action.actor, action.source) == ("payments", "create", "oncall", "api")


def test_list_get_patch_delete(admin, reader, destinations):
    first = make_route(admin)
    second = make_route(admin, name="edge", destinations=["edge-hook"], position=0)
    make_route(admin, name="fallback", match={}, destinations=["Webhook"], is_default=True)
    listing = reader.get("/api/v1/routes").json()
    assert [route["name"] for route in listing["data"]] == ["edge", "payments", "fallback"]
    assert listing["total"] == 3
    assert reader.get(f"/api/v1/routes/{first['id']}").json()["position"] == 1

    changed = admin.patch(f"/api/v1/routes/{first['id']}", {"enabled": False, "position": 0}, format="json")
    assert changed.status_code == 200
    assert (changed.json()["enabled"], changed.json()["position"]) == (False, 0)

    assert admin.delete(f"/api/v1/routes/{second['id']}").status_code == 204
    assert_error(reader.get(f"/api/v1/routes/{second['id']}"), 404, "Not Found", f"route {second['id']} not found")
    assert_error(admin.delete(f"/api/v1/routes/{second['id']}"), 404, "Not Found")
    assert_error(reader.get("/api/v1/routes/99999999999999999999"), 404, "Not Found")


def test_reorder(admin, destinations):
    one = make_route(admin, name="one")
    two = make_route(admin, name="two")
    response = admin.post("/api/v1/routes/reorder", {"order": [two["id"], one["id"]]}, format="json")
    assert response.status_code == 200
    assert [route["name"] for route in response.json()["data"]] == ["two", "one"]
    body = assert_error(
        admin.post("/api/v1/routes/reorder", {"order": [two["id"]]}, format="json"), 422, "Unprocessable Entity",
    )
    assert f"leaves out route {one['id']}" in body["fields"]["order"]
    assert_error(admin.post("/api/v1/routes/reorder", {"order": ["1"]}, format="json"), 400, "Bad Request")


@pytest.mark.parametrize(
    ("body", "status", "field", "text"),
    [
        ({"match": {"types": ["Expiry"]}}, 400, "match.types", "unknown type 'Expiry'"),
        ({"match": {"kind": "x"}}, 400, "match.kind", "unknown criterion"),
        ({"match": None}, 400, "match", "null"),
        ({"destinations": ["nowhere"]}, 422, "destinations", "unknown destination 'nowhere'"),
        ({"name": "a\nb"}, 400, "name", "line breaks"),
        ({"position": "1"}, 400, "position", "whole number"),
        ({"enabled": 1}, 400, "enabled", "true or false"),
        ({"id": 5}, 400, "id", "read-only"),
        ({"colour": "red"}, 400, "colour", "unknown field"),
        ({"is_default": True}, 422, "match", "leave its match empty"),
    ],
)
def test_bad_route_input_names_the_field(admin, destinations, body, status, field, text):
    full = {"name": "payments", "match": {"labels": {"team": "payments"}}, "destinations": ["payments-hook"], **body}
    response = admin.post("/api/v1/routes", full, format="json")
    assert response.status_code == status, response.content
    assert text in response.json()["fields"][field]
    assert not Route.objects.exists()


def test_a_read_only_key_may_read_and_test_but_not_change(admin, reader, destinations):
    route = make_route(admin)
    assert reader.get("/api/v1/routes").status_code == 200
    assert reader.post("/api/v1/routes/test", ALERT, format="json").status_code == 200
    for response in (
        reader.post("/api/v1/routes", {"name": "x", "destinations": []}, format="json"),
        reader.patch(f"/api/v1/routes/{route['id']}", {"enabled": False}, format="json"),
        reader.delete(f"/api/v1/routes/{route['id']}"),
        reader.post("/api/v1/routes/reorder", {"order": [route["id"]]}, format="json"),
        reader.post("/api/v1/alerts", ALERT, format="json"),
    ):
        assert_error(response, 403, "Forbidden", "admin key")
    assert Route.objects.get().enabled
    assert NotificationEvent.objects.count() == 0
    assert ConfigurationAction.objects.count() == 1


def test_routes_test_answers_where_the_alert_would_go_and_creates_nothing(admin, reader, destinations):
    make_route(admin, continue_matching=True)
    make_route(admin, name="warnings", match={"severities": ["warning"]}, destinations=["edge-hook", "Slack"])
    response = reader.post("/api/v1/routes/test", ALERT, format="json")
    assert response.json() == {
        "destinations": [
            {"name": "payments-hook", "channel": "Webhook"}, {"name": "Slack", "channel": "Slack"},
            {"name": "edge-hook", "channel": "Webhook"},
        ],
        "routes": ["payments", "warnings"],
    }
    assert NotificationEvent.objects.count() == 0
    nowhere = reader.post("/api/v1/routes/test", {**ALERT, "labels": {}, "severity": "critical"}, format="json")
    body = assert_error(nowhere, 422, "Unprocessable Entity", "no route matched and there is no default route")
    assert "routes" in body["fields"]


def test_alerts_create_an_event_per_destination_then_deduplicate(admin, destinations):
    make_route(admin, destinations=["payments-hook", "Webhook"])
    response = admin.post("/api/v1/alerts", {**ALERT, "dedup_key": "mc-api-prod-7d"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["routes"] == ["payments"]
    assert [(event["destination"], event["channel"], event["created"]) for event in body["events"]] == [
        ("Webhook", "Webhook", True), ("payments-hook", "Webhook", True),
    ]
    stored = {event.id: event.destination for event in NotificationEvent.objects.all()}
    assert stored == {event["id"]: event["destination"] for event in body["events"]}

    again = admin.post("/api/v1/alerts", {**ALERT, "dedup_key": "mc-api-prod-7d"}, format="json")
    assert again.status_code == 200
    assert [event["created"] for event in again.json()["events"]] == [False, False]
    assert NotificationEvent.objects.count() == 2


def test_alerts_with_nowhere_to_go_or_bad_input(admin, destinations):
    assert_error(
        admin.post("/api/v1/alerts", ALERT, format="json"), 422, "Unprocessable Entity",
        "no route matched and there is no default route",
    )
    bad = assert_error(
        admin.post("/api/v1/alerts", {**ALERT, "channel": "Webhook", "severity": "high"}, format="json"),
        400, "Bad Request",
    )
    assert set(bad["fields"]) == {"channel", "severity"}
    assert NotificationEvent.objects.count() == 0


def test_an_alert_without_recipient_to_email_goes_to_its_recipients_or_is_refused(admin, destinations, settings):
    make_route(admin, destinations=["Email"])
    refused = assert_error(admin.post("/api/v1/alerts", ALERT, format="json"), 422, "Unprocessable Entity")
    assert "CERTCTL_SMTP_RECIPIENTS" in refused["fields"]["recipient"]
    assert NotificationEvent.objects.count() == 0

    settings.CERTCTL_SMTP_RECIPIENTS = "pki@example.com, oncall@example.com"
    created = admin.post("/api/v1/alerts", ALERT, format="json")
    assert created.status_code == 201, created.content
    assert NotificationEvent.objects.get().recipient == "pki@example.com, oncall@example.com"
