"""The CLI's share of dead-letter triage: the list filters everywhere, dry runs, groups, CSV and JSON output."""
import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_django.fixtures import Settings
from rest_framework.test import APIClient

from notifications.models import NotificationEvent
from notifications.notifiers import DeliveryResult
from notifications.queries.events import get_event
from tests.cli.conftest import MakeEvent, cli, cli_error
from tests.deliveries import claim, record

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
API_KEY = "cli-triage-admin-5e2b"


# dead_at(when, error=…, **fields): an event that went dead at `when` on a permanent failure with `error`.
DeadAt = Callable[..., NotificationEvent]


@pytest.fixture
def dead_at(make_event: MakeEvent) -> DeadAt:
    def make(
        when: datetime, error: str = "Webhook receiver answered HTTP 410: gone", **fields: Any
    ) -> NotificationEvent:
        event = make_event(**fields)
        claimed = claim(event.id, now=when)
        assert claimed is not None
        record(claimed, DeliveryResult.permanent_failure(error, http_status=410), when)
        return get_event(event.id)

    return make


def test_list_takes_the_new_filters(dead_at: DeadAt) -> None:
    early = dead_at(T0, error="Slack webhook: could not connect")
    late = dead_at(T0 + timedelta(hours=2))
    since_nine = cli("list", "--failed-after", "2026-11-29T09:00:00Z", "--json").json()["data"]
    assert [r["id"] for r in since_nine] == [late.id]
    assert [r["id"] for r in cli("list", "--error", "COULD NOT", "--format", "json").json()["data"]] == [early.id]


def test_list_bad_time_exits_2_naming_the_option() -> None:
    run = cli_error("list", "--created-after", "tomorrow-ish")
    assert run.returncode == 2
    assert "--created-after must be an ISO 8601 time" in run.message


def test_list_csv_is_every_row_not_one_page(make_event: MakeEvent) -> None:
    for n in range(7):
        make_event(certificate_id=f"cert-{n}")
    out = cli("list", "--format", "csv", "--per-page", "2").out
    data = list(csv.DictReader(io.StringIO(out)))
    assert len(data) == 7
    assert data[0]["certificate_id"] == "cert-6"


def test_requeue_all_dead_failed_after_recovers_since_a_time(dead_at: DeadAt) -> None:
    before, after = dead_at(T0), dead_at(T0 + timedelta(hours=2))
    run = cli("requeue", "--all-dead", "--failed-after", "2026-11-29T09:00:00Z")
    assert "requeued 1 dead notifications matching the filters" in run.out
    assert get_event(after.id).status == "pending"
    assert get_event(before.id).status == "dead"


def test_requeue_dry_run_changes_nothing(dead_at: DeadAt) -> None:
    dead = dead_at(T0)
    run = cli("requeue", "--all-dead", "--dry-run")
    assert "dry run: would requeue 1, skip 0; nothing was changed" in run.out
    assert dead.id in run.out
    assert get_event(dead.id).status == "dead"


def test_read_dry_run_by_id_changes_nothing(dead_at: DeadAt) -> None:
    dead = dead_at(T0)
    run = cli("read", dead.id, "notif-unknown", "--dry-run")
    assert "would mark read 1, skip 1" in run.out
    assert NotificationEvent.objects.get(id=dead.id).read_at is None


def test_read_all_dead_with_an_error_filter(dead_at: DeadAt) -> None:
    gone = dead_at(T0)
    other = dead_at(T0, error="Slack webhook: could not connect")
    assert "dismissed 1 dead notifications matching the filters" in cli("read", "--all-dead", "--error", "410").out
    assert get_event(gone.id).read_at is not None
    assert get_event(other.id).read_at is None


def test_filters_without_all_dead_are_a_usage_error() -> None:
    run = cli_error("requeue", "notif-1", "--error", "410", "--failed-after", "2026-11-29")
    assert run.returncode == 2
    assert "--failed-after, --error only apply with --all-dead" in run.message


def test_groups_table_and_json(dead_at: DeadAt) -> None:
    for n in range(3):
        dead_at(T0 + timedelta(minutes=n), error=f"HTTP 503 after {n + 1}00 ms")
    dead_at(T0, error="HTTP 400 after 100 ms")
    table = cli("groups").out
    lines = table.splitlines()
    assert lines[0].split() == ["Count", "Channel", "Kind", "Cause", "First", "Last", "Example"]
    assert lines[2].split()[:8] == ["3", "Webhook", "permanent", "HTTP", "503", "after", "<n>", "ms"]
    assert lines[3].split()[:4] == ["1", "Webhook", "permanent", "HTTP"]
    assert "HTTP 400 after <n> ms" in lines[3]
    assert "2 cause(s), 4 notification(s)" in table
    assert "--cause-kind KIND --cause 'CAUSE'" in table
    body = cli("groups", "--json").json()
    assert body["total"] == 2
    assert body["data"][0]["count"] == 3
    assert (body["data"][0]["kind"], body["data"][0]["error"]) == ("permanent", "HTTP 503 after <n> ms")
    assert cli("groups", "--channel", "Slack").out.strip() == "the dead-letter queue is empty for these filters"


def test_requeue_all_dead_of_one_cause_as_groups_names_it(dead_at: DeadAt) -> None:
    same = [dead_at(T0 + timedelta(minutes=n), error=f"HTTP 503 after {n + 1}00 ms") for n in range(2)]
    other = dead_at(T0, error="HTTP 400 after 100 ms")

    run = cli(
        "requeue", "--all-dead", "--channel", "Webhook", "--cause-kind", "permanent", "--cause", "HTTP 503 after <n> ms"
    )

    assert "requeued 2 dead Webhook notifications matching the filters" in run.out
    assert [get_event(e.id).status for e in [*same, other]] == ["pending", "pending", "dead"]


def test_a_bad_cause_kind_is_a_usage_error() -> None:
    run = cli_error("requeue", "--all-dead", "--cause-kind", "fatal")
    assert run.returncode == 2
    assert "--cause-kind: invalid choice: 'fatal'" in run.message


def test_dry_run_json_is_the_rest_apis_dry_run_answer(dead_at: DeadAt, settings: Settings) -> None:
    dead = dead_at(T0)
    settings.CERTCTL_API_KEYS_NAMED = f"cli-test:{API_KEY}:admin"
    rest = APIClient(headers={"Authorization": f"Bearer {API_KEY}"})
    requeue = rest.post("/api/v1/notifications/requeue", {"status": "dead", "dry_run": True}, format="json")
    read = rest.post("/api/v1/notifications/read", {"ids": [dead.id, "notif-unknown"], "dry_run": True}, format="json")

    assert cli("requeue", "--all-dead", "--dry-run", "--json").json() == requeue.json()
    assert requeue.json() == {"would_requeue": 1, "skipped": 0, "sample": [dead.id]}
    assert cli("read", dead.id, "notif-unknown", "--dry-run", "--json").json() == read.json()
    assert read.json() == {"would_mark_read": 1, "skipped": 1, "sample": [dead.id]}
    assert get_event(dead.id).status == "dead"


def test_json_without_dry_run_is_a_usage_error(dead_at: DeadAt) -> None:
    dead = dead_at(T0)
    run = cli_error("requeue", "--all-dead", "--json")
    assert run.returncode == 2
    assert "--json only applies with --dry-run" in run.message
    assert get_event(dead.id).status == "dead"
