"""/api/v1/destinations: list, create, get, change, remove, test, pause and resume; secrets write-only."""
import pytest

from notifications.engine import passes
from notifications.models import ConfigurationAction, Destination, NotificationEvent, Status
from notifications.operations.events import create_event
from tests.api.conftest import assert_error

pytestmark = pytest.mark.django_db
SECRET = "sig-secret-3b9d7f21c0"


def _create(admin, receiver, name="payments", **extra):
    body = {"name": name, "channel": "Webhook", "config": {"url": receiver.url + "/hook", "secret": SECRET}, **extra}
    return admin.post("/api/v1/destinations", body, format="json")


def test_create_answers_the_destination_without_its_secrets(admin, receiver):
    response = _create(admin, receiver, description="payments team")
    assert response.status_code == 201, response.content
    assert response["Location"].endswith("/api/v1/destinations/payments")
    body = response.json()
    assert body["secrets_set"] == ["url", "secret"]
    assert body["config"] == {}
    assert (body["configured"], body["problem"], body["from_environment"]) == (True, None, False)
    assert SECRET not in response.content.decode()
    action = ConfigurationAction.objects.get(action="create")
    assert (action.actor, action.source) == ("oncall", "api")


def test_list_has_the_environment_destinations_and_the_stored_ones(admin, reader, receiver, settings):
    settings.CERTCTL_OPSGENIE_API_KEY = "og-key-7c1d9e2b4a"
    _create(admin, receiver)
    body = reader.get("/api/v1/destinations").json()
    names = [row["name"] for row in body["data"]]
    assert names == sorted(["Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie", "payments"])
    assert body["total"] == 7
    opsgenie = next(row for row in body["data"] if row["name"] == "OpsGenie")
    assert opsgenie["from_environment"]
    assert opsgenie["secrets_set"] == ["api_key"]
    # No url set: the region's endpoint.
    assert (opsgenie["config"]["region"], opsgenie["config"]["url"]) == ("us", "")
    assert "og-key-7c1d9e2b4a" not in str(body)
    slack = next(row for row in body["data"] if row["name"] == "Slack")
    assert not slack["configured"]
    assert "CERTCTL_SLACK_WEBHOOK_URL" in slack["problem"]


def test_get_patch_and_delete(admin, receiver):
    _create(admin, receiver)
    assert admin.get("/api/v1/destinations/payments").json()["name"] == "payments"
    changed = admin.patch("/api/v1/destinations/payments", {"config": {"secret": ""}, "enabled": False}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["secrets_set"], changed.json()["enabled"]) == (["url"], False)
    assert admin.delete("/api/v1/destinations/payments").status_code == 204
    assert_error(admin.get("/api/v1/destinations/payments"), 404, "Not Found", "no destination 'payments'")


def test_writes_need_an_admin_key(reader, receiver):
    assert _create(reader, receiver).status_code == 403
    assert reader.patch("/api/v1/destinations/Webhook", {"enabled": False}, format="json").status_code == 403
    assert reader.delete("/api/v1/destinations/Webhook").status_code == 403
    assert reader.post("/api/v1/destinations/Webhook/test").status_code == 403
    assert not Destination.objects.filter(name="payments").exists()


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "9lives", "channel": "Webhook", "config": {}}, 400, "name"),
        ({"name": "a", "channel": "Fax", "config": {}}, 400, "channel"),
        ({"name": "a", "channel": "Webhook", "config": {}, "colour": "red"}, 400, "colour"),
        ({"name": "a", "channel": "Webhook", "config": "https://x"}, 400, "config"),
        ({"name": "a", "channel": "Webhook", "config": {}, "enabled": "yes"}, 400, "enabled"),
        ({"name": "a", "channel": "Webhook", "config": {"url": "nope"}}, 422, "config.url"),
        ({"name": "a", "channel": "Webhook", "config": {"url": "https://x.example", "other": 1}}, 422, "config.other"),
    ],
)
def test_bad_input_is_refused_naming_the_field(admin, body, status, field):
    response = admin.post("/api/v1/destinations", body, format="json")
    assert response.status_code == status, response.content
    assert field in response.json()["fields"]


def test_environment_destinations_are_read_only(admin):
    response = admin.patch("/api/v1/destinations/Webhook", {"enabled": False}, format="json")
    assert_error(response, 409, "Conflict", "CERTCTL_WEBHOOK_URL", "restart")
    assert_error(admin.delete("/api/v1/destinations/Webhook"), 409, "Conflict", "environment variables")


def test_a_taken_name_is_a_conflict(admin, receiver):
    _create(admin, receiver)
    assert_error(_create(admin, receiver), 409, "Conflict", "already exists")


def test_without_a_secrets_key_create_says_what_to_set(admin, receiver, settings):
    settings.CERTCTL_SECRETS_KEYS = ""
    assert_error(_create(admin, receiver), 409, "Conflict", "CERTCTL_SECRETS_KEYS")


def test_send_test_answers_outcome_status_duration_and_the_redacted_error(admin, receiver):
    from tests.receivers import Reply

    _create(admin, receiver)
    receiver.reply_with(Reply(status=403, body=f"forbidden: {SECRET.upper()}"))
    response = admin.post("/api/v1/destinations/payments/test")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["outcome"], body["http_status"]) == ("permanent", 403)
    assert body["duration_ms"] >= 0
    assert "403" in body["error"]
    assert SECRET.upper() not in body["error"]
    assert SECRET not in response.content.decode()


def test_pause_and_resume_an_environment_destination(admin):
    assert admin.post("/api/v1/destinations/Webhook/pause").status_code == 200
    assert admin.post("/api/v1/destinations/Webhook/resume").status_code == 200
    assert admin.post("/api/v1/destinations/nowhere/pause").status_code == 404


def test_pausing_a_stored_destination_holds_only_its_events_until_it_is_resumed(admin, receiver):
    _create(admin, receiver)
    _create(admin, receiver, name="edge")
    response = admin.post("/api/v1/destinations/payments/pause")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "payments"
    for destination in ("payments", "edge"):
        create_event(type="RenewalFailure", destination=destination, recipient="ops@example.com", message=destination)

    passes.process_pending()

    assert [request.json()["message"] for request in receiver.requests] == ["edge"]
    assert NotificationEvent.objects.get(destination="payments").status == Status.PENDING
    assert admin.post("/api/v1/destinations/payments/resume").status_code == 200
    passes.process_pending()
    assert NotificationEvent.objects.get(destination="payments").status == Status.SENT
    audit = ConfigurationAction.objects.filter(action__in=["pause", "resume"]).values_list("target", "action", "source")
    assert list(audit.order_by("id")) == [("payments", "pause", "api"), ("payments", "resume", "api")]
