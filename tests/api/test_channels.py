"""GET /api/v1/channels and pause/resume: state per channel, admin keys only, audited."""
import pytest

from notifications.engine import passes
from notifications.errors import DestinationNotFound
from notifications.models import ConfigurationAction, DestinationState, NotificationEvent
from tests.api.conftest import assert_error
from tests.deliveries import destination_state

pytestmark = pytest.mark.django_db


def test_every_channel_is_listed_with_its_state(admin, webhook):
    destination_state("Slack", consecutive_failures=2)
    body = admin.get("/api/v1/channels").json()
    assert body["total"] == 6
    by_name = {c["name"]: c for c in body["data"]}
    assert by_name["Webhook"] == {
        "name": "Webhook", "configured": True, "state": "closed", "since": None, "paused_by": None,
        "consecutive_failures": 0, "next_probe_at": None,
    }
    assert (by_name["Slack"]["configured"], by_name["Slack"]["consecutive_failures"]) == (False, 2)


def test_an_admin_key_pauses_and_resumes_a_channel_and_both_are_audited(admin, webhook, make_event):
    paused = admin.post("/api/v1/channels/webhook/pause")
    assert paused.status_code == 200
    answer = paused.json()
    assert (answer["name"], answer["state"], answer["paused_by"]) == ("Webhook", "paused", "oncall")
    event = make_event()
    assert passes.process_pending().claimed == 0
    assert webhook.requests == []

    resumed = admin.post("/api/v1/channels/Webhook/resume")
    assert (resumed.status_code, resumed.json()["state"]) == (200, "closed")
    passes.process_pending()
    assert NotificationEvent.objects.get(id=event.id).status == "sent"
    assert list(ConfigurationAction.objects.order_by("id").values_list("target", "action", "actor", "source")) == [
        ("Webhook", "pause", "oncall", "api"), ("Webhook", "resume", "oncall", "api"),
    ]


def test_a_read_only_key_may_list_but_not_pause(reader):
    assert reader.get("/api/v1/channels").status_code == 200
    assert_error(reader.post("/api/v1/channels/Webhook/pause"), 403, "Forbidden", "admin key")
    assert not DestinationState.objects.filter(paused_at__isnull=False).exists()


def test_an_unknown_channel_is_404_naming_the_channels(admin):
    assert_error(admin.post("/api/v1/channels/Pigeon/pause"), 404, "Not Found", "no channel 'Pigeon'", "Webhook")


def test_a_destination_that_is_not_found_is_404_with_its_message(admin, monkeypatch):
    def removed_meanwhile(name, actor):
        raise DestinationNotFound(name)

    monkeypatch.setattr("notifications.api.views.pause_channel", removed_meanwhile)
    assert_error(admin.post("/api/v1/channels/Webhook/pause"), 404, "Not Found", "no destination 'Webhook'")
