"""`notifications channels`, `pause` and `resume`."""
import json

import pytest

from notifications.engine import passes
from notifications.models import ConfigurationAction, NotificationEvent
from tests.cli.conftest import MakeEvent, cli, cli_error
from tests.receivers import Receiver

pytestmark = pytest.mark.django_db


def test_channels_lists_each_state(webhook: Receiver) -> None:
    run = cli("channels")
    assert "Webhook" in run.out
    assert "closed" in run.out
    listing = json.loads(cli("channels", "--json").out)
    assert listing["total"] == 6
    assert {c["name"]: c["configured"] for c in listing["data"]}["Webhook"] is True


def test_pause_holds_events_and_resume_lets_them_flow(webhook: Receiver, make_event: MakeEvent) -> None:
    assert "Webhook paused" in cli("pause", "webhook").out
    assert "already paused" in cli("pause", "Webhook").out
    event = make_event()
    assert passes.process_pending().claimed == 0
    assert "paused" in cli("channels").out

    assert "Webhook resumed" in cli("resume", "Webhook").out
    assert "was not paused" in cli("resume", "Webhook").out
    passes.process_pending()
    assert NotificationEvent.objects.get(id=event.id).status == "sent"
    actions = ConfigurationAction.objects.order_by("id").values_list("action", "source")
    assert list(actions) == [("pause", "cli"), ("resume", "cli")]


def test_an_unknown_channel_is_a_usage_error(db: None) -> None:
    assert cli_error("pause", "Pigeon").returncode == 2
