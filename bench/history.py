"""A year of history: reads, the retry claim, bulk requeue and the retention purge at 1,000,000 events.

    .venv/bin/python bench/history.py                     # 1,000,000 events (about 1.41 M attempts)
    .venv/bin/python bench/history.py --events 100000     # a tenth, while developing

Builds issue 12's data set straight into the tables with SQL (generate_series) in a database of its own,
BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/certctl_history_bench, created if missing;
its tables are emptied): created_at spread over a year, 87 % sent (1 attempt each), 10 % dead (5), 1 % failed
and due, 1 % failed and not due (2 each), 1 % pending; certificate ids over 5,000 values, six channels.
Then it prints every figure of the issue beside a baseline from the same run where one exists:
- the claim of 1,000 due retries (claim_due_events("retry"), median of 7, rolled back each time) beside the
  same call with index scans disabled, and the claim statement's plan;
- HTTP figures (p50/p95) against gunicorn with 2 workers started by the script: the REST list filtered by
  status=dead and unfiltered, page 200 of the UI's Dead letter tab, /api/v1/stats/summary, the dashboard and
  /metrics, each beside the count it no longer makes where there is one (timed in this process);
- bulk requeue of the 100,000 dead events through POST /api/v1/notifications/requeue, and the log lines it wrote;
- the purge of 500,000 expired sent events (notifications.engine.upkeep.purge): total time, slowest statement,
  and whether the counts and the /metrics delivery totals are exact afterwards.
Not part of the test run. Figures and the command: docs/performance.md, "A year of history".
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/certctl_history_bench"
ADMIN_KEY = "bench-admin-" + uuid.uuid4().hex
# Shared with gunicorn: the UI session this script writes is signed with it.
SECRET_KEY = "bench-secret-" + uuid.uuid4().hex
CHANNELS = ("Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie")
TYPES = ("ExpirationWarning", "RenewalSuccess", "RenewalFailure", "DeploymentSuccess", "DeploymentFailure",
         "PolicyViolation", "Revocation")

# n % 100 decides the state: 0-86 sent, 87-96 dead, 97 failed and due, 98 failed and not due, 99 pending.
EVENTS_SQL = """
INSERT INTO notification_events (id, type, certificate_id, channel, recipient, message, status, retry_count,
    attempt_count, next_retry_at, last_error, sent_at, created_at, updated_at, cause, cause_kind)
SELECT 'notif-h' || lpad(n::text, 12, '0'),
    (%(types)s::varchar[])[1 + n %% 7],
    'cert-' || (n %% 5000),
    (%(channels)s::varchar[])[1 + (n / 100) %% 6],
    'ops@example.com',
    'Certificate cert-' || (n %% 5000) || ' expires in 14 days',
    CASE WHEN b < 87 THEN 'sent' WHEN b < 97 THEN 'dead' WHEN b < 99 THEN 'failed' ELSE 'pending' END,
    CASE WHEN b < 87 THEN 0 WHEN b < 97 THEN 5 WHEN b < 99 THEN 2 ELSE 0 END,
    CASE WHEN b < 87 THEN 1 WHEN b < 97 THEN 5 WHEN b < 99 THEN 2 ELSE 0 END,
    CASE WHEN b = 97 THEN %(now)s - (n %% 600) * interval '1 second'
         WHEN b = 98 THEN %(now)s + interval '30 minutes' END,
    CASE WHEN b BETWEEN 87 AND 98 THEN 'HTTP 503 from receiver: maintenance' END,
    CASE WHEN b < 87 THEN created + interval '2 seconds' END,
    created, created,
    -- A dead event's cause, as the engine stores it (notifications.causes): its retries ran out.
    CASE WHEN b BETWEEN 87 AND 96 THEN 'HTTP 503 from receiver: maintenance' END,
    CASE WHEN b BETWEEN 87 AND 96 THEN 'transient' END
FROM (
    SELECT n, n %% 100 AS b, %(now)s - (%(events)s - n) * (interval '365 days' / %(events)s) AS created
    FROM generate_series(1, %(events)s) AS n
) AS s
"""

ATTEMPTS_SQL = """
INSERT INTO notification_attempts (event_id, number, started_at, duration_ms, outcome, error, http_status,
    resulting_status)
SELECT e.id, g, e.created_at + (g - 1) * interval '1 minute', 40 + (g * 37) %% 200,
    CASE WHEN e.status = 'sent' THEN 'success' ELSE 'transient_failure' END,
    CASE WHEN e.status = 'sent' THEN '' ELSE 'HTTP 503 from receiver: maintenance' END,
    CASE WHEN e.status = 'sent' THEN 200 ELSE 503 END,
    CASE WHEN e.status = 'sent' THEN 'sent' WHEN e.status = 'dead' AND g = 5 THEN 'dead' ELSE 'failed' END
FROM notification_events AS e CROSS JOIN LATERAL generate_series(1, e.attempt_count) AS g
WHERE e.attempt_count > 0
"""


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def build(events: int) -> dict[str, float]:
    from django.db import connection
    from django.utils import timezone

    from notifications.engine import upkeep

    timings = {}
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE notification_attempts, notification_operator_actions, notification_events, notification_counts, "
            "notification_delivery_totals, notification_metrics_fold, notification_last_passes CASCADE"
        )
        started = time.perf_counter()
        cursor.execute(EVENTS_SQL, {"types": list(TYPES), "channels": list(CHANNELS), "now": now, "events": events})
        timings["events"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(ATTEMPTS_SQL, [])
        timings["attempts"] = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE notification_events")
        cursor.execute("VACUUM ANALYZE notification_attempts")
        timings["vacuum analyze"] = time.perf_counter() - started
    started = time.perf_counter()
    upkeep.fold_delivery_totals(now)
    upkeep.fold_counts()
    timings["first fold"] = time.perf_counter() - started
    return timings


def median_ms(run, times: int = 7) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


# --- the claim ----------------------------------------------------------------


def claim_figures(size: int) -> dict[str, float]:
    """Claims of `size` due retries, 7 in a row (as successive passes take them), each committed; then the same
    with index scans disabled. Median ms of claim_due_events and of its one statement, in both ways."""
    from django.db import connection, transaction

    from notifications.engine import claims

    figures = {}
    for label, disable_indexes in (("indexed", False), ("scanned", True)):
        calls: list[float] = []
        statements: list[float] = []

        def timed(execute, sql, params, many, context, statements=statements):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                if sql.lstrip().startswith("UPDATE"):
                    statements.append((time.perf_counter() - started) * 1000)

        for _ in range(7):
            with transaction.atomic(), connection.execute_wrapper(timed):
                if disable_indexes:
                    with connection.cursor() as cursor:
                        cursor.execute("SET LOCAL enable_indexscan = off")
                        cursor.execute("SET LOCAL enable_bitmapscan = off")
                        cursor.execute("SET LOCAL enable_indexonlyscan = off")
                started = time.perf_counter()
                claimed = claims.claim_due_events("retry", limit=size)
                calls.append((time.perf_counter() - started) * 1000)
            assert len(claimed) == size, f"claimed {len(claimed)} of {size}"
        figures[f"{label} call"] = statistics.median(calls)
        figures[f"{label} statement"] = statistics.median(statements)
        release_claims()
    return figures


def claim_select_figures(size: int) -> tuple[float, float]:
    """Median ms of the claim's inner SELECT (the due rows it picks and locks, the part issue 12 timed), with
    the indexes and with index scans disabled; each run rolled back."""
    from django.db import connection, transaction
    from django.utils import timezone

    from notifications.models import NotificationEvent

    candidates = (
        NotificationEvent.objects.due("retry", timezone.now())
        .order_by("next_retry_at", "id").values("id")[:size]
    )
    figures = []
    for disable_indexes in (False, True):
        samples = []
        for _ in range(7):
            with transaction.atomic(), connection.cursor() as cursor:
                sql, params = candidates.select_for_update(skip_locked=True).query.sql_with_params()
                if disable_indexes:
                    cursor.execute("SET LOCAL enable_indexscan = off")
                    cursor.execute("SET LOCAL enable_bitmapscan = off")
                    cursor.execute("SET LOCAL enable_indexonlyscan = off")
                started = time.perf_counter()
                cursor.execute(sql, params)
                assert len(cursor.fetchall()) == size
                samples.append((time.perf_counter() - started) * 1000)
                transaction.set_rollback(True)
        figures.append(statistics.median(samples))
    return figures[0], figures[1]


def release_claims() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE notification_events SET claimed_until = NULL, claim_token = NULL WHERE claim_token IS NOT NULL")
        cursor.execute("VACUUM ANALYZE notification_events")


def claim_plan(size: int) -> str:
    """EXPLAIN ANALYZE of the claim statement, captured from the engine's own SQL; rolled back."""
    from django.db import connection, transaction

    from notifications.engine import claims

    statements: list[tuple[str, Any]] = []

    def capture(execute, sql, params, many, context):
        if sql.lstrip().startswith("UPDATE"):
            statements.append((sql, params))
        return execute(sql, params, many, context)

    with transaction.atomic():
        with connection.execute_wrapper(capture):
            claims.claim_due_events("retry", limit=size)
        transaction.set_rollback(True)
    sql, params = statements[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


# --- HTTP ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(database_url: str, log: Path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CERTCTL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url, CERTCTL_API_KEYS_NAMED=f"bench:{ADMIN_KEY}:admin", CERTCTL_RATE_LIMIT_RPS="0",
        PORT=str(port), WEB_CONCURRENCY="2", PYTHONUNBUFFERED="1",
    )
    with log.open("ab") as out:
        web = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
             "certctl.wsgi"],
            cwd=PROJECT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or web.poll() is not None:
                        raise SystemExit(f"gunicorn did not start; see {log}") from None
                    time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            os.killpg(web.pid, signal.SIGTERM)
            try:
                web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(web.pid, signal.SIGKILL)


def ui_session_cookie() -> dict[str, str]:
    """A logged-in session of a bench superuser, written straight into the session store."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return {settings.SESSION_COOKIE_NAME: session.session_key}


def http_figures(client, path: str, requests: int, **kwargs: Any) -> tuple[float, float]:
    for _ in range(5):  # warm the workers' connections and caches
        client.get(path, **kwargs).raise_for_status()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path, **kwargs).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def in_process_ms(query) -> float:
    return median_ms(query, times=5)


# --- purge --------------------------------------------------------------------


def delivery_totals() -> dict[tuple[str, ...], float]:
    """The /metrics delivery counters and histograms as a scrape computes them."""
    from notifications.metrics import DatabaseCollector

    totals = {}
    for family in DatabaseCollector().collect():
        if family.type not in ("counter", "histogram"):
            continue
        for sample in family.samples:
            totals[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return totals


def purge_figures(to_purge: int) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from notifications.engine import upkeep
    from notifications.models import NotificationEvent
    from notifications.queries import counts

    oldest = (
        NotificationEvent.objects.filter(status="sent").order_by("sent_at", "id")
        .values_list("sent_at", flat=True)[to_purge:to_purge + 1].first()
    )
    now = timezone.now()
    totals_before = delivery_totals()
    slowest = [0.0, ""]

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed > slowest[0]:
                slowest[:] = [elapsed, sql[:80]]

    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        report = upkeep.purge(now - oldest, now=now)
    elapsed = time.perf_counter() - started
    counted = counts.by_group()
    recounted = NotificationEvent.objects.count_by_group()
    return {
        "report": report, "seconds": elapsed, "slowest_ms": slowest[0] * 1000, "slowest_sql": slowest[1],
        "counts_exact": counted == recounted, "totals_exact": delivery_totals() == totals_before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100, help="requests per HTTP figure (p50/p95 over them)")
    parser.add_argument("--purge", type=int, default=None, help="expired sent events to purge (default: half the events)")
    args = parser.parse_args()
    to_purge = args.purge if args.purge is not None else args.events // 2

    database_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    ensure_database(database_url)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "certctl.settings"
    os.environ["SECRET_KEY"] = SECRET_KEY
    import django

    django.setup()
    import logging

    import httpx
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count, Max, Q

    from notifications.models import NotificationAttempt, NotificationEvent
    from notifications.queries import counts

    logging.getLogger("notifications").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"certctl-history-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)

    def row(label: str, figure: str, baseline: str = "") -> None:
        print(f"{label:<58} {figure:<24} {baseline}", flush=True)

    started = time.perf_counter()
    timings = build(args.events)
    attempts = NotificationAttempt.objects.count()
    row(f"built {args.events:,} events, {attempts:,} attempts", f"{time.perf_counter() - started:.1f} s",
        ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()))
    print(f"{'operation':<58} {'now':<24} baseline (same run)")

    # 1 % of the events are due retries: seven claims of 1,000 need 7,000 (a smaller set claims less).
    size = min(1000, args.events // 100 // 7)
    selected, scanned_select = claim_select_figures(size)
    row(f"claim {size:,} due retries, median of 7: its SELECT … FOR UPDATE SKIP LOCKED", f"{selected:.1f} ms",
        f"index scans disabled: {scanned_select:.1f} ms ({scanned_select / selected:.0f}x)")
    claims = claim_figures(size)
    plan = claim_plan(size)
    for what, key in (("claim_due_events(\"retry\")", "call"), ("its UPDATE … RETURNING", "statement")):
        indexed, scanned = claims[f"indexed {key}"], claims[f"scanned {key}"]
        row(f"claim {size:,} due retries, median of 7: {what}", f"{indexed:.1f} ms",
            f"index scans disabled: {scanned:.1f} ms ({scanned / indexed:.0f}x)")

    log = tmp / "gunicorn.log"
    with gunicorn(database_url, log) as base, httpx.Client(base_url=base, timeout=60) as client:
        api = {"headers": {"Authorization": f"Bearer {ADMIN_KEY}"}}
        ui = {"cookies": ui_session_cookie()}

        def dead_count() -> None:
            NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count()

        def all_count() -> None:
            NotificationEvent.objects.count()

        def old_summary() -> None:
            list(NotificationEvent.objects.order_by().values("status").annotate(n=Count("id")))
            NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count()
            NotificationEvent.objects.filter(read_at__isnull=True).count()

        def old_channel_table() -> None:
            list(NotificationAttempt.objects.order_by().values("event__channel").annotate(
                last_success=Max("started_at", filter=Q(outcome="success")),
                last_failure=Max("started_at", filter=~Q(outcome="success")),
            ))

        def old_metrics_counts() -> None:
            list(NotificationEvent.objects.order_by().values("status", "channel").annotate(n=Count("id")))
            NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count()

        for label, path, options, baseline_label, baseline in (
            ("GET /api/v1/notifications?status=dead", "/api/v1/notifications?status=dead", api,
             "its count(*)", dead_count),
            ("GET /api/v1/notifications", "/api/v1/notifications", api, "its count(*)", all_count),
            ("UI Dead letter tab, page 200", "/notifications/?tab=dead&page=200", ui, "its count(*)", dead_count),
            ("GET /api/v1/stats/summary", "/api/v1/stats/summary", api, "the counts it made", old_summary),
            ("UI dashboard /", "/", ui, "its channel table over all attempts", old_channel_table),
            ("GET /metrics (after the fold)", "/metrics", {}, "the event counts it made", old_metrics_counts),
        ):
            p50, p95 = http_figures(client, path, args.requests, **options)
            row(label, f"p50 {p50:.1f} / p95 {p95:.1f} ms", f"{baseline_label}: {in_process_ms(baseline):.1f} ms")

        dead = counts.matching({"status": "dead"})
        lines_before = log.read_text().count("\n")
        started = time.perf_counter()
        response = client.post("/api/v1/notifications/requeue", json={"status": "dead"}, **api)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        time.sleep(0.5)  # the access log line
        lines = log.read_text().count("\n") - lines_before
        row(f"bulk requeue of {dead:,} dead through the API", f"{elapsed * 1000:.0f} ms",
            f"{response.json()['requeued']:,} requeued; {lines} log lines")

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE notification_events")
    figures = purge_figures(to_purge)
    report = figures["report"]
    row(f"purge of {report.events:,} expired sent events", f"{figures['seconds']:.1f} s",
        f"{report.attempts:,} attempts, {report.operator_actions:,} actions; slowest statement "
        f"{figures['slowest_ms']:.0f} ms; counts exact: {figures['counts_exact']}; "
        f"/metrics totals unchanged: {figures['totals_exact']}")
    print(f"\nclaim statement plan:\n{plan}\n\ngunicorn log: {log}")


if __name__ == "__main__":
    main()
