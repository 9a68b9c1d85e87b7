"""`notifications import-certctl` against a real certctl table in its own PostgreSQL database."""
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql
from pytest_django.fixtures import Settings

from notifications.actors import Actor
from notifications.causes import cause_of
from notifications.engine import claims
from notifications.models import NotificationEvent
from notifications.operations.certctl_import import READ_BEFORE_DELIVERY
from notifications.operations.events import mark_read
from notifications.queries.groups import failure_groups
from notifications.queries.summary import stats_summary
from tests.cli.conftest import cli, cli_error

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

# certctl's notification_events as its migrations leave it (000001, 000016, 000017).
CERTCTL_DDL = """
CREATE TABLE notification_events (
    id TEXT PRIMARY KEY,
    type VARCHAR(255) NOT NULL,
    certificate_id TEXT,
    channel VARCHAR(255) NOT NULL,
    recipient VARCHAR(255) NOT NULL,
    message TEXT NOT NULL,
    sent_at TIMESTAMPTZ,
    status VARCHAR(50) NOT NULL DEFAULT 'pending',
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    retry_count INTEGER NOT NULL DEFAULT 0,
    next_retry_at TIMESTAMPTZ,
    last_error TEXT
)
"""
T0 = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def _server(settings: Settings) -> dict[str, Any]:
    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"] or "127.0.0.1", "port": db["PORT"] or 5432, "user": db["USER"],
        "password": db["PASSWORD"] or None,
    }


@pytest.fixture
def certctl_db(settings: Settings) -> Iterator[str]:
    """A throw-away database holding certctl's table; its URL. Dropped afterwards."""
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("needs PostgreSQL")
    server = _server(settings)
    name = f"certctl_src_{secrets.token_hex(4)}"
    with psycopg.connect(dbname=settings.DATABASES["default"]["NAME"], autocommit=True, **server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    password = f":{server['password']}" if server["password"] else ""
    url = f"postgres://{server['user']}{password}@{server['host']}:{server['port']}/{name}"
    with psycopg.connect(url) as source:
        source.execute(CERTCTL_DDL)
    yield url
    with psycopg.connect(dbname=settings.DATABASES["default"]["NAME"], autocommit=True, **server) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def insert(url: str, rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(url) as source, source.cursor() as cursor:
        for row in rows:
            columns = sql.SQL(", ").join(map(sql.Identifier, row))
            values = sql.SQL(", ").join(sql.Placeholder() * len(row))
            statement = sql.SQL("INSERT INTO notification_events ({}) VALUES ({})").format(columns, values)
            cursor.execute(statement, list(row.values()))


def row(event_id: str, status: str, **columns: Any) -> dict[str, Any]:
    base = {
        "id": event_id, "type": "ExpirationWarning", "channel": "Email", "recipient": "ops@example.com",
        "message": f"{event_id} expires", "status": status, "created_at": T0,
    }
    return {**base, **columns}


@pytest.fixture
def certctl_rows(certctl_db: str) -> str:
    insert(certctl_db, [
        row("c-pending", "pending", certificate_id="mc-1"),
        row("c-sent", "sent", sent_at=T0 + timedelta(seconds=3), channel="Webhook"),
        row(
            "c-failed", "failed", retry_count=2, next_retry_at=T0 + timedelta(minutes=4),
            last_error="smtp: 451 try later",
        ),
        # certctl's fault 1: a first failure that was never scheduled.
        row("c-failed-unscheduled", "failed", error="dial tcp: connection refused"),
        row("c-dead", "dead", retry_count=5, last_error="smtp: 550 no such user", channel="Slack"),
        row("c-read-sent", "read", sent_at=T0 + timedelta(seconds=9)),
        row("c-read-unsent", "read", error="webhook: 500"),
        row("c-bad-channel", "pending", channel="Carrier-Pigeon"),
        row("c-bad-status", "archived"),
    ])
    return certctl_db


def test_dry_run_counts_and_writes_nothing(certctl_rows: str) -> None:
    run = cli("import-certctl", "--database-url", certctl_rows, "--dry-run")
    assert "9 notification events read" in run.out
    assert "would import 7 (1 pending, 2 sent, 2 failed, 2 dead)" in run.out
    assert "dry run: nothing was written" in run.out
    assert "c-bad-channel: channel: unknown channel 'Carrier-Pigeon'" in run.err
    assert "c-bad-status: unknown status 'archived'" in run.err
    assert not NotificationEvent.objects.exists()


def test_import_keeps_ids_states_schedules_and_errors(certctl_rows: str) -> None:
    run = cli("import-certctl", "--database-url", certctl_rows)
    assert "imported 7 (1 pending, 2 sent, 2 failed, 2 dead)" in run.out
    assert (
        "2 of them read in certctl, now marked read; 1 were read before delivery and are dead (never sent)" in run.out
    )
    assert "not importable, skipped: 2" in run.err
    # The password never appears; host, port and database do.
    assert "certctl_src_" in run.out
    events = {e.id: e for e in NotificationEvent.objects.all()}
    assert set(events) == {
        "c-pending", "c-sent", "c-failed", "c-failed-unscheduled", "c-dead", "c-read-sent", "c-read-unsent",
    }

    pending = events["c-pending"]
    assert (pending.status, pending.certificate_id, pending.created_at) == ("pending", "mc-1", T0)
    assert pending.read_at is None
    sent = events["c-sent"]
    assert (sent.status, sent.sent_at, sent.channel) == ("sent", T0 + timedelta(seconds=3), "Webhook")
    failed = events["c-failed"]
    assert (failed.status, failed.retry_count, failed.next_retry_at, failed.last_error) == (
        "failed", 2, T0 + timedelta(minutes=4), "smtp: 451 try later"
    )
    unscheduled = events["c-failed-unscheduled"]
    assert unscheduled.status == "failed"
    assert unscheduled.next_retry_at is not None
    assert unscheduled.last_error == "dial tcp: connection refused"  # certctl's `error` when last_error is empty
    dead = events["c-dead"]
    assert (dead.status, dead.retry_count, dead.last_error, dead.read_at) == ("dead", 5, "smtp: 550 no such user", None)
    read_sent = events["c-read-sent"]
    assert (read_sent.status, read_sent.sent_at) == ("sent", T0 + timedelta(seconds=9))
    assert read_sent.read_at is not None
    read_unsent = events["c-read-unsent"]
    assert (read_unsent.status, read_unsent.read_at is not None, read_unsent.next_retry_at) == ("dead", True, None)
    assert read_unsent.last_error is not None
    assert read_unsent.last_error.startswith(READ_BEFORE_DELIVERY)
    assert "webhook: 500" in read_unsent.last_error

    summary = stats_summary()
    assert (summary["notifications_dead"], summary["notifications_dead_unacknowledged"]) == (2, 1)
    # Delivery carries on where certctl left it: the pending one is due now, the failed one at its time.
    assert [e.id for e in claims.claim_due_events("pending")] == ["c-pending"]
    assert {e.id for e in claims.claim_due_events("retry", now=T0 + timedelta(minutes=5))} == {"c-failed"}


def test_import_is_idempotent_by_id(certctl_rows: str) -> None:
    cli("import-certctl", "--database-url", certctl_rows)
    mark_read("c-dead", Actor("oncall", "test"))
    insert(certctl_rows, [row("c-later", "pending")])
    again = cli("import-certctl", "--database-url", certctl_rows, "--batch-size", "2")
    assert "imported 1 (1 pending, 0 sent, 0 failed, 0 dead)" in again.out
    assert "already here, left alone: 7" in again.out
    assert NotificationEvent.objects.count() == 8
    assert NotificationEvent.objects.get(id="c-dead").read_at is not None  # local changes are kept


def test_a_database_without_certctl_table_is_refused_clearly(certctl_db: str) -> None:
    with psycopg.connect(certctl_db) as source:
        source.execute("DROP TABLE notification_events")
    run = cli_error("import-certctl", "--database-url", certctl_db)
    assert run.returncode == 1
    assert "nothing imported: notification_events does not exist there: is this certctl's database?" in run.message


# --- rows that break a rule (N2, N7) ------------------------------------------------

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def test_rows_breaking_the_id_rule_or_a_column_limit_are_refused_each_with_its_reason(
    certctl_db: str, settings: Settings
) -> None:
    settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = 65536
    with psycopg.connect(certctl_db) as source:  # a hostile table: wider than certctl's
        source.execute(
            "ALTER TABLE notification_events ALTER COLUMN recipient TYPE TEXT, ALTER COLUMN channel TYPE TEXT"
        )
    insert(certctl_db, [
        row("imp-slash/../x", "dead", last_error="HTTP 500"),
        row("..", "pending"),
        row("\x1b[31mred\x1b[0m\x9b2J", "pending"),
        row("i" * 65, "pending"),
        row("requeue", "pending"),
        row("c-long-certificate", "pending", certificate_id="c" * 300),
        row("c-long-recipient", "pending", recipient="r" * 1025),
        row("c-two-line-recipient", "pending", recipient="ops@example.com\r\nBcc: all@example.com"),
        row("c-huge-message", "pending", message="m" * 1_000_000),
        row("c-empty-message", "pending", message=""),
        row("c-bad-channel\x1b[2J", "pending", channel="Pigeon\x1b[2J" + "x" * 5000),
        row("c-fine", "dead", last_error="HTTP 503 (request 3fa85f64-5717-4562-b3fc-2c963f66afa6)"),
    ])

    run = cli("import-certctl", "--database-url", certctl_db)

    assert "imported 1 (0 pending, 0 sent, 0 failed, 1 dead)" in run.out
    assert set(NotificationEvent.objects.values_list("id", flat=True)) == {"c-fine"}
    assert "not importable, skipped: 11" in run.err
    reasons = dict(line.strip().split(": ", 1) for line in run.err.splitlines()[1:])
    rule = "id: must be 1 to 64 letters, digits or . _ ~ : -, starting with a letter or digit (it becomes part of URLs)"
    assert reasons["imp-slash/../x"] == reasons[".."] == reasons["\\x1b[31mred\\x1b[0m\\x9b2J"] == rule
    assert reasons["i" * 65] == rule
    assert reasons["requeue"].startswith("id: 'requeue' is reserved")
    assert reasons["c-long-certificate"] == "certificate_id: must be at most 255 characters"
    assert reasons["c-long-recipient"] == "recipient: must be at most 1024 characters"
    assert reasons["c-two-line-recipient"] == "recipient: must not contain line breaks"
    assert reasons["c-huge-message"] == (
        "message: is 1000000 bytes; the limit is 65536 (CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES)"
    )
    assert reasons["c-empty-message"] == "message: must not be empty"
    # Control characters escaped, a long value cut.
    assert reasons["c-bad-channel\\x1b[2J"].startswith("channel: unknown channel 'Pigeon\\x1b[2Jxxx")
    assert reasons["c-bad-channel\\x1b[2J"].endswith("…")
    assert len(reasons["c-bad-channel\\x1b[2J"]) == 120
    assert not CONTROL.search(run.out + run.err)


def test_imported_dead_rows_carry_their_cause_and_form_groups(certctl_db: str) -> None:
    insert(certctl_db, [
        row("c-dead-1", "dead", retry_count=5,
            last_error="webhook: HTTP 503 (request 3fa85f64-5717-4562-b3fc-2c963f66afa6)"),
        row("c-dead-2", "dead", retry_count=5,
            last_error="webhook: HTTP 503 (request 9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d)"),
        row("c-read-unsent", "read", error="webhook: HTTP 400"),
    ])

    cli("import-certctl", "--database-url", certctl_db)

    groups = failure_groups({"delivery_status": "dead"})
    assert [(g.kind, g.error, g.count) for g in groups] == [
        ("transient", "webhook: HTTP 503 (request <uuid>)", 2),
        ("permanent", cause_of(READ_BEFORE_DELIVERY + ". Last error in certctl: webhook: HTTP 400"), 1),
    ]
