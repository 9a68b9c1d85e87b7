"""The parts of bench/history.py: its database and the year of history built into it with SQL, the service it
measures (gunicorn, a logged-in UI session, the MCP server on stdio), its timing, and the reads the pages made
before (the baselines)."""
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from mcp import ClientSession, StdioServerParameters, stdio_client

PROJECT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/certctl_history_bench"
ADMIN_KEY = "bench-admin-" + uuid.uuid4().hex
# Shared with gunicorn: the UI session this script writes is signed with it.
SECRET_KEY = "bench-secret-" + uuid.uuid4().hex
# Page 200 of the list at the default 50 a page: the 9,951st to 10,000th newest events.
DEEP_PAGE = 200
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
    """The year of history (docs/performance.md): seconds per step."""
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


# --- timing -----------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


def median_ms(run: Callable[[], object], times: int = 5) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def timed_ms(run: Callable[[], object], requests: int, warm_up: int = 5) -> tuple[float, float]:
    """p50 and p95 in ms of `requests` calls of `run`, after `warm_up` untimed ones."""
    for _ in range(warm_up):
        run()
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


# --- the service --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a process of the service (gunicorn, `manage.py …`) on the bench database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CERTCTL_")}
    env.update(
        DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY=SECRET_KEY, DATABASE_URL=database_url,
        CERTCTL_API_KEYS_NAMED=f"bench:{ADMIN_KEY}:admin", CERTCTL_RATE_LIMIT_RPS="0", PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@contextmanager
def gunicorn(database_url: str, log: Path) -> Iterator[str]:
    """The service under gunicorn with 2 workers; its base URL."""
    port = free_port()
    env = service_env(database_url, PORT=str(port), WEB_CONCURRENCY="2")
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

    superuser = {"is_superuser": True, "is_staff": True}
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults=superuser)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    assert session.session_key is not None
    return {settings.SESSION_COOKIE_NAME: session.session_key}


@asynccontextmanager
async def mcp_session(database_url: str) -> AsyncIterator[ClientSession]:
    """`manage.py mcp` on stdio, as an assistant's client starts it, through the SDK's client."""
    env = service_env(database_url, CERTCTL_LOG_LEVEL="WARNING")
    params = StdioServerParameters(command=sys.executable, args=["manage.py", "mcp"], cwd=str(PROJECT), env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


# --- the reads the pages made before: the baselines, timed in the script's process -----------------


def dead_count() -> None:
    from notifications.models import NotificationEvent

    NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count()


def all_count() -> None:
    from notifications.models import NotificationEvent

    NotificationEvent.objects.count()


def old_summary() -> None:
    from django.db.models import Count

    from notifications.models import NotificationEvent

    list(NotificationEvent.objects.order_by().values("status").annotate(n=Count("id")))
    NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count()
    NotificationEvent.objects.filter(read_at__isnull=True).count()


def old_channel_table() -> None:
    from django.db.models import Max, Q

    from notifications.models import NotificationAttempt

    list(NotificationAttempt.objects.order_by().values("event__channel").annotate(
        last_success=Max("started_at", filter=Q(outcome="success")),
        last_failure=Max("started_at", filter=~Q(outcome="success")),
    ))


def old_metrics_counts() -> None:
    from django.db.models import Count

    from notifications.models import NotificationEvent

    list(NotificationEvent.objects.order_by().values("status", "channel").annotate(n=Count("id")))
    NotificationEvent.objects.filter(status="dead", read_at__isnull=True).count()


def old_deep_page() -> None:
    """Page 200 as the CLI and MCP read it before issue 22: count(*) of every event, then OFFSET over whole rows."""
    from notifications.models import NotificationEvent
    from notifications.queries.events import DEFAULT_PER_PAGE, LIST_ORDER

    events = NotificationEvent.objects.order_by(*LIST_ORDER)
    events.count()
    offset = (DEEP_PAGE - 1) * DEFAULT_PER_PAGE
    list(events[offset : offset + DEFAULT_PER_PAGE])
