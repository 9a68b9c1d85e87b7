"""`GET /api/v1/notifications?format=csv`: a header, every matching row with its cells as the API writes them, and
X-Total-Count before the first row so that a client can check it got them all (issue 21, N3)."""
import csv
import io
import re
import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection, connections

from notifications.actors import Actor
from notifications.models import NotificationEvent
from notifications.operations.events import mark_read
from notifications.queries import export
from notifications.queries.events import filter_events, get_event
from notifications.queries.export import CsvExport
from tests.deliveries import deliver_now

pytestmark = pytest.mark.django_db

HEADER = [
    "id", "type", "certificate_id", "channel", "recipient", "message", "severity", "status", "delivery_status",
    "retry_count", "next_retry_at", "last_error", "last_attempt_at", "sent_at", "created_at", "updated_at", "read_at",
    "dedup_key", "destination", "labels",
]
ACTOR = Actor("tester", "api")


def table(response):
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def records(response):
    header, *rows = table(response)
    return [dict(zip(header, row, strict=True)) for row in rows]


TIMES = {"next_retry_at", "last_attempt_at", "sent_at", "created_at", "updated_at", "read_at"}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def moment(text):
    """A time cell or API value as a datetime; None when empty."""
    if not text:
        return None
    assert ISO_UTC.match(text), text
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    "filters",
    [
        {}, {"channel": "Slack"}, {"status": "dead"}, {"q": "expires", "channel": "Slack"},
        {"read": "false", "type": "Revocation"},
    ],
    ids=["all", "counted-by-channel", "counted-by-status", "text-search", "counted-then-type"],
)
def test_x_total_count_is_the_number_of_rows_that_follow(reader, make_event, filters):
    for _ in range(4):
        make_event(channel="Slack")
    deliver_now(make_event(channel="Slack", type="Revocation").id)  # dead: no Slack configured
    make_event(channel="Webhook", message="something else")

    response = reader.get("/api/v1/notifications", {"format": "csv", **filters})

    header, *rows = table(response)
    assert header == HEADER
    assert int(response["X-Total-Count"]) == len(rows)
    assert len(rows) == NotificationEvent.objects.filter(
        pk__in=filter_events(NotificationEvent.objects.all(), filters)
    ).count()


def test_no_match_is_a_header_and_a_zero_count(reader, make_event):
    make_event()
    response = reader.get("/api/v1/notifications", {"format": "csv", "channel": "Teams"})
    assert response["X-Total-Count"] == "0"
    assert table(response) == [HEADER]


def test_every_row_in_order_across_pieces(reader, make_event, monkeypatch):
    monkeypatch.setattr(export, "CHUNK_ROWS", 3)
    made = []
    for minute in range(8):
        with time_machine.travel(datetime(2026, 11, 29, 9, minute, tzinfo=UTC), tick=False):
            made.append(make_event().id)

    response = reader.get("/api/v1/notifications", {"format": "csv"})

    assert [row["id"] for row in records(response)] == made[::-1]
    assert len(list(response.streaming_content)) == 0  # consumed: one piece per three rows came before
    assert response["X-Total-Count"] == "8"


def test_cells_are_written_as_the_api_writes_them(reader, make_event, settings, closed_port):
    with time_machine.travel(datetime(2026, 11, 29, 9, 0, tzinfo=UTC), tick=False):
        on_the_second = make_event(certificate_id="mc-1", severity="critical", dedup_key="k-1")
    with time_machine.travel(datetime(2026, 11, 29, 9, 0, 0, 120000, tzinfo=UTC), tick=False):
        quoted = make_event(message='says "hi", then\nleaves; a,b', recipient="a@example.com")
    mark_read(quoted.id, ACTOR)
    settings.CERTCTL_WEBHOOK_URL = f"http://127.0.0.1:{closed_port}/hook"
    failed = make_event()
    assert deliver_now(failed.id) == "failed"

    rows = {row["id"]: row for row in records(reader.get("/api/v1/notifications", {"format": "csv"}))}

    for event in (on_the_second, quoted, failed):
        shown = reader.get(f"/api/v1/notifications/{event.id}").json()
        row = rows[event.id]
        for name, value in shown.items():
            if name in TIMES:
                assert moment(row[name]) == moment(value), name
            else:
                assert row[name] == ("" if value is None else str(value)), name
        assert moment(row["last_attempt_at"]) == get_event(event.id).last_attempt_at
    assert rows[on_the_second.id]["created_at"] == "2026-11-29T09:00:00Z"
    assert moment(rows[quoted.id]["created_at"]) == datetime(2026, 11, 29, 9, 0, 0, 120000, tzinfo=UTC)
    assert (rows[quoted.id]["status"], rows[quoted.id]["delivery_status"]) == ("read", "pending")
    assert rows[quoted.id]["message"] == 'says "hi", then\nleaves; a,b'
    assert rows[failed.id]["retry_count"] == "1"
    assert "could not connect" in rows[failed.id]["last_error"]


@pytest.mark.parametrize("column", ["id", "certificate_id", "recipient", "message", "last_error", "dedup_key"])
@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_text_cell_that_a_spreadsheet_would_run_is_neutralised(reader, column, start):
    text = f"{start}HYPERLINK(\"http://evil.example\")"
    fields = dict(
        id="imported-1", type="Revocation", channel="Webhook", recipient="ops@example.com", message="m", status="dead",
        last_error="HTTP 410", cause="HTTP 410", cause_kind="permanent",
    )
    NotificationEvent.objects.create(**{**fields, column: text})

    (row,) = records(reader.get("/api/v1/notifications", {"format": "csv"}))

    assert row[column] == "'" + text
    assert row["type"] == "Revocation"
    assert row["status"] == "dead"


def test_text_with_a_formula_character_inside_is_left_alone(reader, make_event):
    make_event(message="a=b+c-d@e", recipient="ops@example.com")
    (row,) = records(reader.get("/api/v1/notifications", {"format": "csv"}))
    assert (row["message"], row["recipient"]) == ("a=b+c-d@e", "ops@example.com")


def test_the_export_is_documented_with_its_count_header(reader):
    operation = reader.get("/api/v1/schema", {"format": "json"}).json()["paths"]["/api/v1/notifications"]["get"]
    assert "X-Total-Count" in operation["description"]
    assert operation["responses"]["200"]["headers"]["X-Total-Count"]["schema"] == {"type": "integer"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_count_and_rows_are_read_in_one_snapshot_while_events_arrive(make_event, monkeypatch):
    monkeypatch.setattr("notifications.engine.dispatch.enqueue", lambda *args: True)
    for _ in range(3):
        make_event()
    export = CsvExport({})
    header = next(export)  # counted; no row read yet

    def another_client_creates_one():
        make_event()
        connections.close_all()

    arrival = threading.Thread(target=another_client_creates_one)
    arrival.start()
    arrival.join()
    text = header + "".join(export)
    export.close()

    assert NotificationEvent.objects.count() == 4
    assert export.total == 3
    assert len(list(csv.reader(io.StringIO(text)))) == 1 + 3
    assert connection.get_autocommit()
    assert not connection.in_atomic_block  # the read transaction ended


@pytest.mark.django_db(transaction=True)
def test_an_export_outside_any_transaction_reads_every_row_and_ends_its_read(make_event, monkeypatch):
    monkeypatch.setattr("notifications.engine.dispatch.enqueue", lambda *args: True)
    monkeypatch.setattr(export, "CHUNK_ROWS", 2)
    for _ in range(5):
        make_event()

    with CsvExport({"channel": "Webhook"}) as everything:
        text = "".join(everything)

    assert everything.total == 5
    assert len(list(csv.reader(io.StringIO(text)))) == 1 + 5
    assert connection.get_autocommit()
    assert not connection.in_atomic_block


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_download_abandoned_half_way_ends_its_read(make_event, monkeypatch):
    monkeypatch.setattr("notifications.engine.dispatch.enqueue", lambda *args: True)
    monkeypatch.setattr(export, "CHUNK_ROWS", 1)
    for _ in range(3):
        make_event()
    half_read = CsvExport({})
    next(half_read), next(half_read)
    assert connection.in_atomic_block  # the snapshot is open while rows are read

    half_read.close()  # what StreamingHttpResponse does when the client goes away

    assert connection.get_autocommit()
    assert not connection.in_atomic_block
