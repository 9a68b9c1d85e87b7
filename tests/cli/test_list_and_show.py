"""`notifications list` and `notifications show`: what an operator reads, as tables, JSON and CSV."""
import csv
import io
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from notifications.engine import passes
from notifications.filtersets import TIME_RANGE_ERROR
from notifications.models import NotificationEvent
from notifications.queries import export
from notifications.queries.events import get_event
from tests.cli.conftest import MakeEvent, cli, cli_error
from tests.deliveries import deliver_now
from tests.receivers import Receiver, Reply

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
API_KEY = "cli-test-reader-7c41"


@pytest.fixture
def events(make_event: MakeEvent) -> list[NotificationEvent]:
    """Five events, oldest first: two dead Slack, one dead Webhook, two pending Webhook."""
    made = []
    for minute, channel in enumerate(["Slack", "Slack", "Webhook", "Webhook", "Webhook"]):
        with time_machine.travel(T0 + timedelta(minutes=minute), tick=False):
            made.append(make_event(channel=channel, message=f"event {minute}"))
    for event in made[:3]:
        assert deliver_now(event.id, now=T0 + timedelta(minutes=10)) == "dead"  # no channel configured
    return [get_event(event.id) for event in made]


def test_list_table_is_newest_first_with_status_retry_and_the_real_total(events: list[NotificationEvent]) -> None:
    run = cli("list", "--per-page", "2")

    rows = [line for line in run.out.splitlines() if line.startswith("notif-")]
    assert [row.split()[0] for row in rows] == [events[4].id, events[3].id]
    assert "pending   Retry 0/5" in rows[0]
    assert "1-2 of 5 (page 1 of 3); next: --page 2" in run.out


def test_list_second_page_continues_where_the_first_ended(events: list[NotificationEvent]) -> None:
    run = cli("list", "--per-page", "2", "--page", "2", "--json")

    assert [e["id"] for e in run.json()["data"]] == [events[2].id, events[1].id]


def test_list_filters_by_status_and_channel_in_any_letter_case(events: list[NotificationEvent]) -> None:
    run = cli("list", "--status", "DEAD", "--channel", "slack", "--json")

    body = run.json()
    assert [e["id"] for e in body["data"]] == [events[1].id, events[0].id]
    assert body["total"] == 2
    assert {(e["status"], e["channel"]) for e in body["data"]} == {("dead", "Slack")}


def test_list_json_is_the_rest_api_envelope_and_body(events: list[NotificationEvent], settings: Settings) -> None:
    settings.CERTCTL_API_KEYS_NAMED = f"cli-test:{API_KEY}"
    rest = APIClient(headers={"Authorization": f"Bearer {API_KEY}"}).get(
        "/api/v1/notifications", {"status": "dead", "per_page": "2", "page": "1"}
    )

    run = cli("list", "--status", "dead", "--per-page", "2", "--json")

    assert rest.status_code == 200
    assert run.json() == rest.json()
    assert run.json()["total"] == 3
    assert run.json()["per_page"] == 2


def test_list_past_the_last_page_says_so_and_keeps_the_total(events: list[NotificationEvent]) -> None:
    assert cli("list", "--page", "9", "--json").json() == {"data": [], "total": 5, "page": 9, "per_page": 50}
    assert "page 9 is past the end: 5 notifications make 1 page(s) of 50" in cli("list", "--page", "9").out


def test_list_with_nothing_to_show(db: None) -> None:
    assert "no notifications yet" in cli("list").out
    assert cli("list", "--status", "dead").out.strip() == "no notifications match"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (
            ["--status", "lost"],
            "argument --status: invalid choice: 'lost' (choose from 'pending', 'sent', 'failed', 'dead')",
        ),
        (["--channel", "Fax"], "argument --channel: invalid choice: 'Fax'"),
        (["--per-page", "501"], "argument --per-page: 501 is outside 1..500"),
        (["--page", "0"], "argument --page: 0 is less than 1"),
        (["--page", "two"], "argument --page: 'two' is not a whole number"),
    ],
)
def test_list_rejects_bad_arguments_as_usage_errors(db: None, args: Sequence[str], complaint: str) -> None:
    run = cli_error("list", *args)

    assert run.returncode == 2
    assert complaint in run.message


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_list_csv_streams_every_row_in_order_with_a_progress_bar_on_a_terminal(
    events: list[NotificationEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "CHUNK_ROWS", 2)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    run = cli("list", "--format", "csv", "--per-page", "1")

    assert [row["id"] for row in csv_rows(run.out)] == [event.id for event in reversed(events)]
    assert "notifications: 100%" in terminal.getvalue()
    assert "5/5" in terminal.getvalue()


def test_list_csv_prints_no_progress_bar_into_a_file_or_pipe(
    events: list[NotificationEvent], monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", not_a_terminal)

    run = cli("list", "--format", "csv", "--status", "dead")

    assert len(csv_rows(run.out)) == 3
    assert not_a_terminal.getvalue() == ""


def test_list_csv_with_a_bad_filter_exits_2_naming_it(db: None) -> None:
    run = cli_error("list", "--format", "csv", "--created-after", "0001-01-01")

    assert run.returncode == 2
    assert f"--created-after {TIME_RANGE_ERROR}" in run.message


@pytest.fixture
def failed_once(webhook: Receiver, make_event: MakeEvent) -> NotificationEvent:
    """An event whose first delivery met a 500 from the local receiver."""
    webhook.reply_with(Reply(status=500, body="upstream broken"))
    event = make_event(channel="Webhook", certificate_id="mc-api-prod")
    with time_machine.travel(T0, tick=False):
        passes.process_pending()
    return get_event(event.id)


def test_show_lists_the_failed_attempt_and_when_the_next_comes(failed_once: NotificationEvent) -> None:
    with time_machine.travel(T0, tick=False):
        run = cli("show", failed_once.id)

    assert f"ID           {failed_once.id}" in run.out
    assert "Subject      Certificate expiring: mc-api-prod" in run.out
    assert "Status       failed (Retry 1/5)" in run.out
    assert "Next retry   2026-11-28 12:01:00 UTC" in run.out
    assert "Attempts (1)" in run.out
    [attempt] = [line for line in run.out.splitlines() if line.lstrip().startswith("1  2026-11-28")]
    assert "transient_failure" in attempt
    assert "500" in attempt
    assert "failed" in attempt
    assert "Webhook receiver answered HTTP 500" in attempt
    assert "Operator actions (0)" in run.out
    assert "Next attempt at 2026-11-28 12:01:00 UTC" in run.out


def test_show_json_has_the_event_its_attempts_and_operator_actions(
    failed_once: NotificationEvent, webhook: Receiver
) -> None:
    webhook.reply_with(Reply(status=404))
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        passes.retry_sweep()  # a 404 is permanent: dead
    cli("requeue", failed_once.id)

    shown = cli("show", failed_once.id, "--json").json()

    assert shown["id"] == failed_once.id
    assert shown["status"] == "pending"
    assert shown["retry_count"] == 0
    assert [(a["number"], a["http_status"], a["outcome"], a["resulting_status"]) for a in shown["attempts"]] == [
        (1, 500, "transient_failure", "failed"),
        (2, 404, "permanent_failure", "dead"),
    ]
    assert shown["attempts"][0]["started_at"] == "2026-11-28T12:00:00Z"
    [action] = shown["operator_actions"]
    assert (action["action"], action["source"], action["previous_status"]) == ("requeue", "cli", "dead")
    assert action["bulk"] is False
    assert action["actor"]


def test_show_dead_event_says_how_to_requeue_it(events: list[NotificationEvent]) -> None:
    run = cli("show", events[0].id)

    assert "Status       dead (Retry 1/5)" in run.out
    assert "Slack channel is not configured" in run.out
    assert f"then `manage.py notifications requeue {events[0].id}`" in run.out


def test_show_unknown_id_exits_1_naming_it(db: None) -> None:
    run = cli_error("show", "notif-missing")

    assert run.returncode == 1
    assert run.message == "notification notif-missing not found; list ids with `manage.py notifications list`"
