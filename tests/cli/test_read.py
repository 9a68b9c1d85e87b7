"""`notifications read`: mark read by id, or dismiss the dead-letter queue, through operations; never a delivery
change."""
import getpass
from collections.abc import Sequence

import pytest

from notifications.models import NotificationEvent, OperatorAction
from notifications.queries.events import get_event
from notifications.queries.summary import stats_summary
from tests.cli.conftest import MakeEvent, cli, cli_error
from tests.deliveries import deliver_now


@pytest.fixture
def dead(make_event: MakeEvent) -> MakeEvent:
    def make(channel: str = "Slack") -> NotificationEvent:
        event = make_event(channel=channel)
        assert deliver_now(event.id) == "dead"
        return get_event(event.id)

    return make


def test_read_by_id_dismisses_dead_and_leaves_pending_pending(dead: MakeEvent, make_event: MakeEvent) -> None:
    gone, waiting = dead(), make_event()
    run = cli("read", gone.id, waiting.id, gone.id)
    assert "marked 2 read (1 dead, now dismissed)" in run.out
    states = {e.id: (e.status, e.read_at is not None) for e in NotificationEvent.objects.all()}
    assert states == {gone.id: ("dead", True), waiting.id: ("pending", True)}
    actions = OperatorAction.objects.order_by("event_id")
    assert {(a.event_id, a.action, a.source, a.actor) for a in actions} == {
        (gone.id, "mark_read", "cli", getpass.getuser()), (waiting.id, "mark_read", "cli", getpass.getuser())
    }
    again = cli("read", gone.id)
    assert "marked 0 read; 1 already read" in again.out
    assert OperatorAction.objects.count() == 2


def test_read_of_an_unknown_id_exits_1_after_marking_the_known_ones(dead: MakeEvent) -> None:
    event = dead()
    run = cli_error("read", event.id, "notif-nope")
    assert run.returncode == 1
    assert "not found: notif-nope" in run.message
    assert "marked 1 read" in run.out
    assert get_event(event.id).read_at is not None


def test_read_all_dead_dismisses_the_queue_of_one_channel(dead: MakeEvent) -> None:
    slack, webhook = dead("Slack"), dead("Webhook")
    run = cli("read", "--all-dead", "--channel", "slack")
    assert "dismissed 1 dead Slack notifications" in run.out
    assert (get_event(slack.id).read_at is not None, get_event(webhook.id).read_at) == (True, None)
    assert "no undismissed dead Slack notifications" in cli("read", "--all-dead", "--channel", "Slack").out
    assert "dismissed 1 dead notifications" in cli("read", "--all-dead").out
    assert stats_summary()["notifications_dead_unacknowledged"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give the ids to mark read, or --all-dead"),
        (("notif-1", "--all-dead"), "either notification ids or --all-dead"),
        (("notif-1", "--channel", "Slack"), "--channel only applies with --all-dead"),
    ],
)
def test_read_usage_errors_exit_2(args: Sequence[str], message: str) -> None:
    run = cli_error("read", *args)
    assert run.returncode == 2
    assert message in run.message


def test_list_and_show_mark_read_and_dismissed_events(dead: MakeEvent, make_event: MakeEvent) -> None:
    gone, waiting = dead(), make_event()
    cli("read", gone.id, waiting.id)
    listing = cli("list").out
    assert "dead, dismissed" in listing
    assert "pending, read" in listing
    shown = cli("show", gone.id).out
    assert "dead, dismissed (Retry 1/5)" in shown
    # --json has the REST API's shape: status as certctl shows it, delivery_status beside it.
    data = cli("list", "--json").json()["data"]
    assert {(e["status"], e["delivery_status"]) for e in data} == {("read", "dead"), ("read", "pending")}


def test_requeue_all_dead_leaves_dismissed_ones_and_requeue_by_id_makes_them_unread(dead: MakeEvent) -> None:
    kept, dismissed = dead(), dead()
    cli("read", dismissed.id)
    assert "requeued 1 dead notifications" in cli("requeue", "--all-dead").out
    assert get_event(dismissed.id).status == "dead"
    cli("requeue", dismissed.id)
    event = get_event(dismissed.id)
    assert (event.status, event.read_at) == ("pending", None)
    assert get_event(kept.id).status == "pending"
