"""The dead-letter groups on 2,000 dead events, one of them with a 50 KB error (issue 21, N1), side by side.

    BENCH_DATABASE_URL=postgres://certctl@127.0.0.1:5432/certctl_groups_bench .venv/bin/python bench/groups.py

In a database of its own (default postgres://postgres@127.0.0.1:5432/certctl_groups_bench, created if missing; its
tables are emptied): --sent sent events (history the dead-letter queue must not cost) and 2,000 dead ones over
three channels, 1,999 with a receiver's reply holding a request id, one with 'HTTP 500: ' + 'a-' * 25,000 (the
reply that stalled the old code). Then, each the median of --requests runs:
- GET /api/v1/notifications/dead-letter/groups with a read-only key, through the whole Django stack in this
  process (middleware, authentication, the query, serialisation), and the plan of its query;
- a plain `SELECT channel, count(*) … GROUP BY channel` over the same dead events, the floor of any grouping;
- the approach before issue 21, on the same rows: every dead event's last error read and normalised with the
  old regular expressions on every request. Run in a child process stopped after --old-timeout seconds, once
  with the 50 KB reply and once without it.
Not part of the test run. Figures and the command: docs/performance.md, "Dead-letter groups".
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/certctl_groups_bench"
READ_KEY = "bench-reader-4f1c9b2e7d6a"
HUGE_ERROR = "Webhook receiver answered HTTP 500: " + "a-" * 25_000
CHANNELS = ("Webhook", "Slack", "Teams")

# The normaliser before issue 21 (notifications/services.py at 865aec9), for the side-by-side figure only.
OLD_VARIABLE_PARTS = (
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?\b", re.IGNORECASE),
        "<time>",
    ),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE), "<uuid>"),
    (re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\b(?=[\w-]*[a-z])(?=[\w-]*\d)[\w-]{6,}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"\d+(\.\d+)?"), "<n>"),
)


def old_normalise(text: str | None) -> str:
    if not text:
        return ""
    for pattern, placeholder in OLD_VARIABLE_PARTS:
        text = pattern.sub(placeholder, text)
    return re.sub(r"\s+", " ", text).strip()[:300]


def old_groups(rows) -> int:
    """The old failure_groups loop: a group per (channel, normalised error)."""
    groups: dict[tuple[str, str], list] = {}
    for event_id, channel, last_error, last_attempt_at, created_at in rows:
        at = last_attempt_at or created_at
        key = (channel, old_normalise(last_error))
        group = groups.setdefault(key, [0, at, at, event_id])
        group[0] += 1
        group[1] = min(group[1], at)
        if at > group[2]:
            group[2], group[3] = at, event_id
    return len(groups)


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(database_url: str) -> None:
    os.environ.update(
        DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY="bench-groups",
        CERTCTL_AUTH_TYPE="api-key", CERTCTL_API_KEYS_NAMED=f"bench:{READ_KEY}", CERTCTL_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()


def build(sent: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from notifications.causes import dead_cause
    from notifications.models import NotificationEvent

    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE notification_attempts, notification_operator_actions, notification_events, notification_counts "
            "CASCADE"
        )
        cursor.execute(
            """
            INSERT INTO notification_events
                (id, type, channel, recipient, message, status, sent_at, created_at, updated_at)
            SELECT 'notif-s' || lpad(n::text, 10, '0'), 'ExpirationWarning', 'Webhook', 'ops@example.com', 'expires',
                'sent', %(now)s, %(now)s - n * interval '1 minute', %(now)s
            FROM generate_series(1, %(sent)s) AS n
            """,
            {"now": now, "sent": sent},
        )
    dead = []
    for n in range(2000):
        error = f"Webhook receiver answered HTTP 503: upstream unavailable (request {n:04d}a81kx0q2)"
        if n == 0:
            error = HUGE_ERROR
        cause, kind = dead_cause(error, permanent=False)
        dead.append(NotificationEvent(
            id=f"notif-d{n:05d}", type="ExpirationWarning", channel=CHANNELS[n % 3], recipient="ops@example.com",
            message="expires", status="dead", retry_count=5, attempt_count=5, last_error=error, cause=cause,
            cause_kind=kind, created_at=now, last_attempt_at=now,
        ))
    NotificationEvent.objects.bulk_create(dead, batch_size=500)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE notification_events")


def median_ms(run, times: int) -> tuple[float, float]:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def measure_old(without_huge: bool) -> None:
    """In a child process: the old approach once, on the rows build() wrote."""
    setup_django(os.environ["DATABASE_URL"])
    from notifications.models import NotificationEvent

    rows = NotificationEvent.objects.filter(status="dead", read_at__isnull=True).order_by("-created_at", "-id")
    if without_huge:
        rows = rows.exclude(last_error=HUGE_ERROR)
    started = time.perf_counter()
    groups = old_groups(rows.values_list("id", "channel", "last_error", "last_attempt_at", "created_at").iterator())
    print(f"{(time.perf_counter() - started) * 1000:.0f} {groups}")


def old_figure(without_huge: bool, timeout: float) -> str:
    command = [sys.executable, __file__, "--old", "without" if without_huge else "with"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (stopped)"
    milliseconds, groups = done.stdout.split()
    return f"{float(milliseconds):,.0f} ms ({groups} groups)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sent", type=int, default=100_000, help="sent events beside the dead ones")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--old-timeout", type=float, default=180.0, help="seconds the old approach may take")
    parser.add_argument("--old", choices=("with", "without"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.old:
        measure_old(args.old == "without")
        return

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(database_url)
    setup_django(database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    build(args.sent)
    print(
        f"built {args.sent:,} sent and 2,000 dead events (one with a {len(HUGE_ERROR) // 1000} KB error) "
        f"in {time.perf_counter() - started:.1f} s"
    )

    client = Client(headers={"Authorization": f"Bearer {READ_KEY}"}, SERVER_NAME="localhost")
    response = client.get("/api/v1/notifications/dead-letter/groups")
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    largest = body["data"][0]
    print(
        f"groups: {body['total']}, events: {sum(g['count'] for g in body['data'])}; "
        f"largest: {largest['count']} × {largest['error'][:60]}…"
    )

    def endpoint() -> None:
        assert client.get("/api/v1/notifications/dead-letter/groups").status_code == 200

    def plain_count() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT channel, count(*) FROM notification_events WHERE status = 'dead' AND read_at IS NULL "
                "GROUP BY channel"
            )
            cursor.fetchall()

    print(f"{'request':<70} {'median':>10} {'slowest':>10}")
    for label, run in (
        ("GET /api/v1/notifications/dead-letter/groups (whole stack)", endpoint),
        ("plain SELECT channel, count(*) … GROUP BY channel", plain_count),
    ):
        median, slowest = median_ms(run, args.requests)
        print(f"{label:<70} {median:>7.1f} ms {slowest:>7.1f} ms", flush=True)
    for without_huge, label in ((True, "without the 50 KB one"), (False, "with the 50 KB one")):
        figure = old_figure(without_huge, args.old_timeout)
        print(f"{'before issue 21: every last error normalised, ' + label:<70} {figure:>21}", flush=True)

    from django.test.utils import CaptureQueriesContext

    from notifications.queries.groups import failure_groups

    with CaptureQueriesContext(connection) as queries:
        failure_groups()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + queries.captured_queries[-1]["sql"])
        print("\nplan of the groups statement:")
        for (line,) in cursor.fetchall():
            print("   ", line)


if __name__ == "__main__":
    main()
