"""The CLI's share of dead-letter triage: the list filters everywhere, dry runs, groups, CSV and JSON output."""
import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from notifications.models import NotificationEvent
from notifications.notifiers import DeliveryResult
from notifications.queries.events import get_event
from tests.cli.conftest import cli, cli_error
from tests.deliveries import claim, record

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


@pytest.fixture
def dead_at(make_event):
    def make(when, error="Webhook receiver answered HTTP 410: gone", **fields):
        event = make_event(**fields)
        record(claim(event.id, now=when), DeliveryResult.permanent_failure(error, http_status=410), when)
        return get_event(event.id)

    return make


def test_list_takes_the_new_filters(dead_at):
    early = dead_at(T0, error="Slack webhook: could not connect")
    late = dead_at(T0 + timedelta(hours=2))
    assert [r["id"] for r in cli("list", "--failed-after", "2026-11-29T09:00:00Z", "--json").json()["data"]] == [late.id]
    assert [r["id"] for r in cli("list", "--error", "COULD NOT", "--format", "json").json()["data"]] == [early.id]


def test_list_bad_time_exits_2_naming_the_option():
    run = cli_error("list", "--created-after", "tomorrow-ish")
    assert run.returncode == 2
    assert "--created-after must be an ISO 8601 time" in run.message


def test_list_csv_is_every_row_not_one_page(make_event):
    for n in range(7):
        make_event(certificate_id=f"cert-{n}")
    out = cli("list", "--format", "csv", "--per-page", "2").out
    data = list(csv.DictReader(io.StringIO(out)))
    assert len(data) == 7 and data[0]["certificate_id"] == "cert-6"


def test_requeue_all_dead_failed_after_recovers_since_a_time(dead_at):
    before, after = dead_at(T0), dead_at(T0 + timedelta(hours=2))
    run = cli("requeue", "--all-dead", "--failed-after", "2026-11-29T09:00:00Z")
    assert "requeued 1 dead notifications matching the filters" in run.out
    assert get_event(after.id).status == "pending"
    assert get_event(before.id).status == "dead"


def test_requeue_dry_run_changes_nothing(dead_at):
    dead = dead_at(T0)
    run = cli("requeue", "--all-dead", "--dry-run")
    assert "dry run: would requeue 1, skip 0; nothing was changed" in run.out
    assert dead.id in run.out
    assert get_event(dead.id).status == "dead"


def test_read_dry_run_by_id_changes_nothing(dead_at):
    dead = dead_at(T0)
    run = cli("read", dead.id, "notif-unknown", "--dry-run")
    assert "would mark read 1, skip 1" in run.out
    assert NotificationEvent.objects.get(id=dead.id).read_at is None


def test_read_all_dead_with_an_error_filter(dead_at):
    gone = dead_at(T0)
    other = dead_at(T0, error="Slack webhook: could not connect")
    assert "dismissed 1 dead notifications matching the filters" in cli("read", "--all-dead", "--error", "410").out
    assert get_event(gone.id).read_at is not None
    assert get_event(other.id).read_at is None


def test_filters_without_all_dead_are_a_usage_error():
    run = cli_error("requeue", "notif-1", "--error", "410", "--failed-after", "2026-11-29")
    assert run.returncode == 2
    assert "--failed-after, --error only apply with --all-dead" in run.message


def test_groups_table_and_json(dead_at):
    for n in range(3):
        dead_at(T0 + timedelta(minutes=n), error=f"HTTP 503 after {n + 1}00 ms")
    dead_at(T0, error="HTTP 400 after 100 ms")
    table = cli("groups").out
    lines = table.splitlines()
    assert lines[0].split() == ["Count", "Channel", "Kind", "Cause", "First", "Last", "Example"]
    assert lines[2].split()[:8] == ["3", "Webhook", "permanent", "HTTP", "503", "after", "<n>", "ms"]
    assert lines[3].split()[:4] == ["1", "Webhook", "permanent", "HTTP"] and "HTTP 400 after <n> ms" in lines[3]
    assert "2 cause(s), 4 notification(s)" in table and "--cause-kind KIND --cause 'CAUSE'" in table
    body = cli("groups", "--json").json()
    assert body["total"] == 2 and body["data"][0]["count"] == 3
    assert (body["data"][0]["kind"], body["data"][0]["error"]) == ("permanent", "HTTP 503 after <n> ms")
    assert cli("groups", "--channel", "Slack").out.strip() == "the dead-letter queue is empty for these filters"


def test_requeue_all_dead_of_one_cause_as_groups_names_it(dead_at):
    same = [dead_at(T0 + timedelta(minutes=n), error=f"HTTP 503 after {n + 1}00 ms") for n in range(2)]
    other = dead_at(T0, error="HTTP 400 after 100 ms")

    run = cli(
        "requeue", "--all-dead", "--channel", "Webhook", "--cause-kind", "permanent", "--cause", "HTTP 503 after <n> ms"
    )

    assert "requeued 2 dead Webhook notifications matching the filters" in run.out
    assert [get_event(e.id).status for e in [*same, other]] == ["pending", "pending", "dead"]


def test_a_bad_cause_kind_is_a_usage_error():
    run = cli_error("requeue", "--all-dead", "--cause-kind", "fatal")
    assert run.returncode == 2 and "--cause-kind: invalid choice: 'fatal'" in run.message
