"""Events belong to a destination: created by channel (certctl's contract) or by destination name, with labels."""
import pytest
from django.db import connection

from notifications.models import Destination, NotificationEvent

pytestmark = pytest.mark.django_db

NEW = {"type": "ExpirationWarning", "recipient": "ops@example.com", "message": "api.example.com expires in 7 days"}


@pytest.fixture
def payments():
    return Destination.objects.create(name="payments-hook", channel="Webhook", config={"url": "http://127.0.0.1:1/"})


def test_an_event_created_by_channel_goes_to_the_channels_environment_destination(admin):
    response = admin.post("/api/v1/notifications", {**NEW, "channel": "Slack"}, format="json")
    assert response.status_code == 201
    assert response.json()["destination"] == "Slack"
    assert NotificationEvent.objects.get().destination == "Slack"


def test_an_event_created_by_destination_takes_its_channel_and_labels(admin, payments):
    body = {**NEW, "destination": "payments-hook", "labels": {"team": "payments", "env": "prod"}}
    response = admin.post("/api/v1/notifications", body, format="json")
    assert response.status_code == 201, response.json()
    answer = response.json()
    assert (answer["destination"], answer["channel"], answer["labels"]) == (
        "payments-hook", "Webhook", {"team": "payments", "env": "prod"}
    )
    admin.post("/api/v1/notifications", {**NEW, "channel": "Webhook", "labels": {"team": "edge"}}, format="json")
    listed = admin.get("/api/v1/notifications", {"destination": "payments-hook"}).json()
    assert [event["id"] for event in listed["data"]] == [answer["id"]]
    labelled = admin.get("/api/v1/notifications", {"label": "team=payments"}).json()
    assert [event["id"] for event in labelled["data"]] == [answer["id"]]
    assert admin.get("/api/v1/notifications", {"destination": "Webhook"}).json()["total"] == 1


def test_a_label_filter_without_a_value_selects_events_having_the_key(admin):
    admin.post("/api/v1/notifications", {**NEW, "channel": "Webhook", "labels": {"team": "edge"}}, format="json")
    admin.post("/api/v1/notifications", {**NEW, "channel": "Webhook", "labels": {"env": "prod"}}, format="json")
    listed = admin.get("/api/v1/notifications", {"label": "team"}).json()
    assert [event["labels"] for event in listed["data"]] == [{"team": "edge"}]


def test_a_row_inserted_by_plain_sql_with_certctls_columns_goes_to_its_channel():
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notification_events (id, type, channel, recipient, message) "
            "VALUES ('sql-1', 'Revocation', 'Teams', 'ops', 'revoked')"
        )
    event = NotificationEvent.objects.get(id="sql-1")
    assert (event.destination, event.labels, event.status) == ("Teams", {}, "pending")


@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"destination": "nowhere"}, "destination", "unknown destination 'nowhere'"),
        ({"destination": "payments-hook", "channel": "Slack"}, "channel", "is a Webhook destination, not Slack"),
    ],
)
def test_a_destination_the_configuration_cannot_take_is_422_naming_it(admin, payments, body, field, text):
    response = admin.post("/api/v1/notifications", {**NEW, **body}, format="json")
    assert response.status_code == 422
    assert text in response.json()["fields"][field]
    assert not NotificationEvent.objects.exists()


def test_a_disabled_destination_takes_no_events(admin, payments):
    Destination.objects.filter(name="payments-hook").update(enabled=False)
    response = admin.post("/api/v1/notifications", {**NEW, "destination": "payments-hook"}, format="json")
    assert response.status_code == 422
    assert "disabled" in response.json()["fields"]["destination"]


def test_neither_channel_nor_destination_is_400_naming_channel(admin):
    response = admin.post("/api/v1/notifications", NEW, format="json")
    assert response.status_code == 400
    assert "destination" in response.json()["fields"]["channel"]


@pytest.mark.parametrize(
    ("labels", "text"),
    [
        (["team"], "Expected a dictionary"),
        ({"bad key": "x"}, "keys are 1 to 63"),
        ({"team": "a\nb"}, "one line"),
        ({f"k{i}": "v" for i in range(21)}, "at most 20"),
    ],
)
def test_bad_labels_are_400_naming_the_problem(admin, labels, text):
    response = admin.post("/api/v1/notifications", {**NEW, "channel": "Webhook", "labels": labels}, format="json")
    assert response.status_code == 400
    assert text in str(response.json()["fields"]["labels"])


def test_a_dedup_key_is_per_destination(admin, payments):
    keyed = {**NEW, "dedup_key": "mc-7d"}
    first = admin.post("/api/v1/notifications", {**keyed, "channel": "Webhook"}, format="json")
    again = admin.post("/api/v1/notifications", {**keyed, "channel": "Webhook"}, format="json")
    other = admin.post("/api/v1/notifications", {**keyed, "destination": "payments-hook"}, format="json")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    assert NotificationEvent.objects.count() == 2
