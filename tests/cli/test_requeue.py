"""`notifications requeue`: failed/dead back to pending through services, refusals exit 1, one line per id."""
import getpass
from collections.abc import Sequence

import pytest
from pytest_django.fixtures import Settings

from notifications.models import NotificationEvent, OperatorAction
from notifications.queries.events import get_event
from tests.cli.conftest import MakeEvent, cli, cli_error
from tests.deliveries import deliver_now
from tests.receivers import Receiver


@pytest.fixture
def dead(make_event: MakeEvent) -> MakeEvent:
    """Events in a given channel that went dead at once: no notifier is configured in tests."""

    def make(channel: str = "Slack") -> NotificationEvent:
        event = make_event(channel=channel)
        assert deliver_now(event.id) == "dead"
        return get_event(event.id)

    return make


@pytest.fixture
def sent(make_event: MakeEvent, webhook: Receiver) -> NotificationEvent:
    event = make_event(channel="Webhook")
    assert deliver_now(event.id) == "sent"
    return get_event(event.id)


def test_requeue_dead_makes_it_pending_with_fresh_counters_and_records_who(dead: MakeEvent) -> None:
    event = dead()

    run = cli("requeue", event.id)

    assert f"{event.id}: requeued" in run.out
    event.refresh_from_db()
    assert (event.status, event.retry_count, event.last_error, event.next_retry_at) == ("pending", 0, None, None)
    action = OperatorAction.objects.get(event=event)
    assert (action.action, action.source, action.previous_status) == ("requeue", "cli", "dead")
    assert action.actor == getpass.getuser()


def test_requeue_sent_is_refused_with_exit_1_naming_the_status(sent: NotificationEvent) -> None:
    run = cli_error("requeue", sent.id)

    assert run.returncode == 1
    assert f"notification {sent.id} is sent; only failed or dead notifications can be requeued" in run.message
    assert get_event(sent.id).status == "sent"
    assert not OperatorAction.objects.exists()


def test_requeue_pending_is_refused_naming_pending(make_event: MakeEvent) -> None:
    event = make_event()

    assert f"{event.id} is pending" in cli_error("requeue", event.id).message


def test_requeue_unknown_id_exits_1(db: None) -> None:
    run = cli_error("requeue", "notif-nope")

    assert run.returncode == 1
    assert run.message == "notification notif-nope not found; list ids with `manage.py notifications list`"


def test_requeue_several_ids_requeues_what_it_can_and_reports_each(dead: MakeEvent, sent: NotificationEvent) -> None:
    first, second = dead(), dead()

    run = cli_error("requeue", first.id, sent.id, "notif-nope", second.id, first.id)

    assert run.returncode == 1
    assert run.message == "2 of 4 not requeued (see above)"
    assert f"{first.id}: requeued" in run.out
    assert f"{second.id}: requeued" in run.out
    assert f"notification {sent.id} is sent" in run.err
    assert "notification notif-nope not found" in run.err
    statuses = dict(NotificationEvent.objects.values_list("id", "status"))
    assert statuses == {first.id: "pending", second.id: "pending", sent.id: "sent"}
    assert OperatorAction.objects.filter(event=first).count() == 1  # the repeated id counts once


def test_requeue_all_dead_in_one_channel_leaves_the_others(
    dead: MakeEvent, make_event: MakeEvent, closed_port: int, settings: Settings
) -> None:
    slack = [dead("Slack"), dead("Slack")]
    webhook_dead = dead("Webhook")
    settings.CERTCTL_SLACK_WEBHOOK_URL = f"http://127.0.0.1:{closed_port}/slack"
    slack_failed = make_event(channel="Slack")
    assert deliver_now(slack_failed.id) == "failed"

    run = cli("requeue", "--all-dead", "--channel", "slack")

    assert "requeued 2 dead Slack notifications" in run.out
    statuses = dict(NotificationEvent.objects.values_list("id", "status"))
    assert statuses == {
        slack[0].id: "pending", slack[1].id: "pending", webhook_dead.id: "dead", slack_failed.id: "failed",
    }
    assert set(OperatorAction.objects.values_list("source", "bulk")) == {("cli", True)}


def test_requeue_all_dead_with_none_dead(db: None) -> None:
    assert cli("requeue", "--all-dead").out.strip() == "no dead notifications to requeue"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ([], "give the ids to requeue, or --all-dead"),
        (["notif-1", "--all-dead"], "give either notification ids or --all-dead, not both"),
        (["notif-1", "--channel", "Slack"], "--channel only applies with --all-dead"),
        (["--all-dead", "--channel", "Pager"], "argument --channel: invalid choice: 'Pager'"),
    ],
)
def test_requeue_argument_mistakes_exit_2(db: None, args: Sequence[str], complaint: str) -> None:
    run = cli_error("requeue", *args)

    assert run.returncode == 2
    assert complaint in run.message
