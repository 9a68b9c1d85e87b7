"""CSV export speed (issue 21, N3): a million events exported through gunicorn and counted, beside baselines
doing the same work.

    DATABASE_URL=postgres://certctl@127.0.0.1:5432/certctl_bench .venv/bin/python bench/export.py

It migrates the database, empties the events table and fills it with --rows events in one INSERT … SELECT over
generate_series (six channels; 80 % sent, 10 % failed, 10 % dead; one in seven read; one second apart), then
measures each of these --runs times:

- COPY: `COPY (<the export's query>) TO STDOUT WITH CSV HEADER` read through psycopg: the same cells, and
  PostgreSQL writes the CSV itself. The floor.
- plain loop: the export's own query on a psycopg server-side cursor, the rows written by Python's csv module;
  no Django, no HTTP.
- CsvExport: notifications.queries.export in this process: the plain loop plus Django.
- gunicorn: `GET /api/v1/notifications?format=csv` through gunicorn started with the shipped gunicorn.conf.py
  (2 processes with 4 threads), read by this process with httpx. Its rows are counted (the generated text has no
  line breaks, so a row is a line) and checked against X-Total-Count.

With `--before DIR` (a checkout of an earlier version, e.g. `git worktree add /tmp/before <commit>`), the same
download runs once more through a gunicorn started from DIR with its own gunicorn.conf.py: how many rows arrived,
how fast, and how the download ended.

Rows per second are rows / seconds from the request (or query) to the last byte. The database must be
PostgreSQL; its events are replaced. Not part of the test run. Figures and the command: docs/performance.md.
"""
import argparse
import csv
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.settings")
os.environ.setdefault("SECRET_KEY", "bench-secret-" + uuid.uuid4().hex)
KEY = "bench-export-" + uuid.uuid4().hex

FILL = """
INSERT INTO notification_events (id, type, certificate_id, channel, recipient, message, severity, status,
    retry_count, next_retry_at, last_error, sent_at, read_at, created_at, updated_at, attempt_count, last_attempt_at,
    cause, cause_kind)
SELECT 'bench-' || lpad(n::text, 8, '0'),
    (ARRAY['ExpirationWarning', 'RenewalSuccess', 'RenewalFailure', 'DeploymentSuccess'])[1 + n %% 4],
    'mc-' || n %% 5000,
    (ARRAY['Email', 'Webhook', 'Slack', 'Teams', 'PagerDuty', 'OpsGenie'])[1 + n %% 6],
    'team-' || n %% 50 || '@example.com',
    'Certificate mc-' || n %% 5000 || ' for api-' || n || '.example.com expires in ' || n %% 30 || ' days',
    (ARRAY['informational', 'warning', 'critical'])[1 + n %% 3],
    CASE n %% 10 WHEN 0 THEN 'dead' WHEN 1 THEN 'failed' ELSE 'sent' END,
    CASE WHEN n %% 10 < 2 THEN 4 ELSE 0 END,
    CASE WHEN n %% 10 = 1 THEN at + interval '5 min' END,
    CASE WHEN n %% 10 < 2 THEN 'Webhook receiver answered HTTP 503: Service Unavailable (upstream timeout)' END,
    CASE WHEN n %% 10 >= 2 THEN at + interval '2 s' END,
    CASE WHEN n %% 7 = 0 THEN at + interval '1 hour' END,
    at, at + interval '2 s', CASE WHEN n %% 10 < 2 THEN 4 ELSE 1 END, at + interval '2 s',
    CASE WHEN n %% 10 = 0 THEN 'Webhook receiver answered HTTP 503: Service Unavailable (upstream timeout)' END,
    CASE WHEN n %% 10 = 0 THEN 'transient' END
FROM generate_series(1, %s) AS n, LATERAL (SELECT timestamptz '2026-01-01' + n * interval '1 s' AS at) AS t
"""


def export_query() -> tuple[str, tuple]:
    """The SQL notifications.queries.export runs for an export of everything, and its parameters."""
    from notifications.models import NotificationEvent
    from notifications.queries.export import CELLS

    return NotificationEvent.objects.order_by("-created_at", "-id").values_list(*CELLS).query.sql_with_params()


def copy_csv(dsn: str) -> int:
    import psycopg

    sql, params = export_query()
    lines = 0
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT WITH CSV HEADER", params) as copy,
    ):
        for block in copy:
            lines += bytes(block).count(b"\n")
    return lines - 1


def plain_loop(dsn: str) -> int:
    import psycopg

    sql, params = export_query()
    rows = 0
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    with psycopg.connect(dsn) as conn, conn.transaction(), conn.cursor(name="export") as cursor:
        cursor.execute(sql, params)
        while chunk := cursor.fetchmany(2000):
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(chunk)
            rows += len(chunk)
    return rows


def in_process() -> int:
    from notifications.queries.export import CsvExport

    rows = 0
    with CsvExport({}, on_rows=lambda n: None) as export:
        for piece in export:
            rows += piece.count("\n")
        assert rows - 1 == export.total, (rows, export.total)
    return rows - 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(log: Path, project: Path = PROJECT) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CERTCTL_", "GUNICORN_"))}
    env.update(PORT=str(port), CERTCTL_API_KEYS_NAMED=f"bench:{KEY}", CERTCTL_LOG_LEVEL="WARNING")
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "certctl.wsgi"], cwd=project, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, f"http://127.0.0.1:{port}"
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"gunicorn did not start; see {log}")
            time.sleep(0.1)


def through_gunicorn(base: str) -> int:
    import httpx

    lines = 0
    with httpx.stream(
        "GET", f"{base}/api/v1/notifications", params={"format": "csv"}, headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ) as response:
        response.raise_for_status()
        announced = int(response.headers["X-Total-Count"])
        for block in response.iter_raw():
            lines += block.count(b"\n")
    assert lines - 1 == announced, f"received {lines - 1} rows, X-Total-Count said {announced}"
    return announced


def before(project: Path, expected: int) -> None:
    """One download through a gunicorn of an earlier checkout, reported however it ends."""
    import httpx

    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"certctl-bench-export-before-{os.getpid()}.log"
    server, base = start_gunicorn(log, project)
    lines, ending = 0, "complete"
    started = time.perf_counter()
    try:
        with httpx.stream(
            "GET", f"{base}/api/v1/notifications", params={"format": "csv"}, headers={"Authorization": f"Bearer {KEY}"},
            timeout=600,
        ) as response:
            for block in response.iter_raw():
                lines += block.count(b"\n")
    except httpx.HTTPError as error:
        ending = f"cut: {error}"
    finally:
        elapsed = time.perf_counter() - started
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    print(
        f"{'before':<12} {lines - 1:,} of {expected:,} rows in {elapsed:.1f} s ({(lines - 1) / elapsed:,.0f} rows/s), "
        f"{ending}; gunicorn's log: {log}",
        flush=True,
    )


def measure(label: str, run: Callable[[], int], runs: int, expected: int) -> None:
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = run()
        elapsed = time.perf_counter() - started
        assert rows == expected, f"{label}: {rows} rows, expected {expected}"
        rates.append(rows / elapsed)
    print(
        f"{label:<12} {expected:,} rows: best {max(rates):,.0f} rows/s ({expected / max(rates):.1f} s), "
        f"median {statistics.median(rates):,.0f} rows/s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of an earlier version to download through once")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database for the benchmark (its events are replaced)")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notification_events CASCADE")
        cursor.execute(FILL, [args.rows])
        cursor.execute("ANALYZE notification_events")
    print(f"filled {args.rows:,} events in {time.perf_counter() - started:.1f} s", flush=True)
    dsn = os.environ["DATABASE_URL"]

    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"certctl-bench-export-{os.getpid()}.log"
    server, base = start_gunicorn(log)
    try:
        measure("COPY", lambda: copy_csv(dsn), args.runs, args.rows)
        measure("plain loop", lambda: plain_loop(dsn), args.runs, args.rows)
        measure("CsvExport", in_process, args.runs, args.rows)
        measure("gunicorn", lambda: through_gunicorn(base), args.runs, args.rows)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    print(f"gunicorn's log: {log}")
    if args.before:
        before(args.before, args.rows)


if __name__ == "__main__":
    main()
