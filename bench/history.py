"""A year of history: reads, the retry claim, bulk requeue and the retention purge at 1,000,000 events.

    .venv/bin/python bench/history.py                     # 1,000,000 events (about 1.41 M attempts)
    .venv/bin/python bench/history.py --events 100000     # a tenth, while developing

Builds issue 12's data set straight into the tables with SQL (generate_series) in a database of its own,
BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/certctl_history_bench, created if missing;
its tables are emptied): created_at spread over a year, 87 % sent (1 attempt each), 10 % dead (5), 1 % failed
and due, 1 % failed and not due (2 each), 1 % pending; certificate ids over 5,000 values, six channels
(bench/history_parts.py). Then it prints every figure of the issue beside a baseline from the same run where one
exists:
- the claim of 1,000 due retries (claim_due_events("retry"), median of 7, rolled back each time) beside the
  same call with index scans disabled, and the claim statement's plan;
- HTTP figures (p50/p95) against gunicorn with 2 workers started by the script: the REST list filtered by
  status=dead, unfiltered and its page 200, page 200 of the UI's Dead letter tab, /api/v1/stats/summary, the
  dashboard and /metrics, each beside the count it no longer makes where there is one (timed in this process);
- page 200 of the list through the CLI (`manage.py notifications list --page 200 --json`: its handler in this
  process, and the command in a process of its own) and through MCP's certctl_list_notifications (`manage.py mcp`
  on stdio, through the SDK's client), beside the count(*) and OFFSET they made before (issue 22);
- bulk requeue of the 100,000 dead events through POST /api/v1/notifications/requeue, and the log lines it wrote;
- the purge of 500,000 expired sent events (notifications.engine.upkeep.purge): total time, slowest statement,
  and whether the counts and the /metrics delivery totals are exact afterwards.
Not part of the test run. Figures and the command: docs/performance.md, "A year of history".
"""
import argparse
import io
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from history_parts import (
    ADMIN_KEY,
    DEEP_PAGE,
    DEFAULT_DATABASE_URL,
    PROJECT,
    SECRET_KEY,
    all_count,
    build,
    dead_count,
    ensure_database,
    gunicorn,
    mcp_session,
    median_ms,
    old_channel_table,
    old_deep_page,
    old_metrics_counts,
    old_summary,
    percentiles,
    service_env,
    timed_ms,
    ui_session_cookie,
)

sys.path.insert(0, str(PROJECT))
# A statement as Django runs it: what a database execute wrapper is given (connection.execute_wrapper).
Execute = Callable[[str, Any, bool, dict[str, Any]], Any]


def timing_updates(statements: list[float]) -> Callable[[Execute, str, Any, bool, dict[str, Any]], Any]:
    """An execute wrapper that adds the ms of each UPDATE to `statements`."""

    def timed(execute: Execute, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if sql.lstrip().startswith("UPDATE"):
                statements.append((time.perf_counter() - started) * 1000)

    return timed


def disable_index_scans(cursor: Any) -> None:
    """For the rest of the transaction, the planner may not use an index (the claim's baseline)."""
    for kind in ("indexscan", "bitmapscan", "indexonlyscan"):
        cursor.execute(f"SET LOCAL enable_{kind} = off")


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
        for _ in range(7):
            with transaction.atomic(), connection.execute_wrapper(timing_updates(statements)):
                if disable_indexes:
                    with connection.cursor() as cursor:
                        disable_index_scans(cursor)
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
                    disable_index_scans(cursor)
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
        cursor.execute(
            "UPDATE notification_events SET claimed_until = NULL, claim_token = NULL WHERE claim_token IS NOT NULL"
        )
        cursor.execute("VACUUM ANALYZE notification_events")


def claim_plan(size: int) -> str:
    """EXPLAIN ANALYZE of the claim statement, captured from the engine's own SQL; rolled back."""
    from django.db import connection, transaction

    from notifications.engine import claims

    statements: list[tuple[str, Any]] = []

    def capture(execute: Execute, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
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


# --- page 200 of the list, through every interface ---------------------------------


def cli_in_process() -> None:
    """`manage.py notifications list --page 200 --json`, its handler in this process."""
    from django.core.management import call_command

    call_command("notifications", "list", "--page", str(DEEP_PAGE), "--json", stdout=io.StringIO())


def cli_process_seconds(database_url: str, page: int, runs: int = 5) -> float:
    """Median seconds of `manage.py notifications list --page PAGE --json` in a process of its own."""
    command = [sys.executable, "manage.py", "notifications", "list", "--page", str(page), "--json"]
    env = service_env(database_url, CERTCTL_LOG_LEVEL="WARNING")
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=PROJECT, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def mcp_figures(database_url: str, requests: int) -> tuple[float, float]:
    """p50/p95 ms of certctl_list_notifications page 200 over one stdio session, after 5 warm-up calls."""

    async def measure() -> tuple[float, float]:
        async with mcp_session(database_url) as session:
            samples = []
            for n in range(5 + requests):
                started = time.perf_counter()
                result = await session.call_tool("certctl_list_notifications", {"page": DEEP_PAGE})
                assert not result.is_error, result.content
                if n >= 5:
                    samples.append((time.perf_counter() - started) * 1000)
            return percentiles(samples)

    return anyio.run(measure)


# --- purge --------------------------------------------------------------------


def delivery_totals() -> dict[tuple[object, ...], float]:
    """The /metrics delivery counters and histograms as a scrape computes them."""
    from notifications.metrics import DatabaseCollector

    totals: dict[tuple[object, ...], float] = {}
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
    assert oldest is not None, f"fewer than {to_purge + 1} sent events"
    now = timezone.now()
    totals_before = delivery_totals()
    slowest_ms, slowest_sql = 0.0, ""

    def timed(execute: Execute, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        nonlocal slowest_ms, slowest_sql
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            if elapsed > slowest_ms:
                slowest_ms, slowest_sql = elapsed, sql[:80]

    started = time.perf_counter()
    with connection.execute_wrapper(timed):
        report = upkeep.purge(now - oldest, now=now)
    elapsed = time.perf_counter() - started
    counted = counts.by_group()
    recounted = NotificationEvent.objects.count_by_group()
    return {
        "report": report, "seconds": elapsed, "slowest_ms": slowest_ms, "slowest_sql": slowest_sql,
        "counts_exact": counted == recounted, "totals_exact": delivery_totals() == totals_before,
    }


def fetch(client: httpx.Client, path: str, headers: dict[str, str], cookies: dict[str, str]) -> Callable[[], object]:
    return lambda: client.get(path, headers=headers, cookies=cookies).raise_for_status()


def row(label: str, figure: str, baseline: str = "") -> None:
    print(f"{label:<58} {figure:<24} {baseline}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=100, help="requests per HTTP figure (p50/p95 over them)")
    parser.add_argument(
        "--purge", type=int, default=None, help="expired sent events to purge (default: half the events)"
    )
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

    from django.core.management import call_command
    from django.db import connection

    from notifications.models import NotificationAttempt
    from notifications.queries import counts

    logging.getLogger("notifications").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"certctl-history-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)

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
        api = {"Authorization": f"Bearer {ADMIN_KEY}"}
        ui = ui_session_cookie()

        old_page = ("count(*) and OFFSET, as CLI and MCP read before", old_deep_page)
        for label, path, headers, cookies, (baseline_label, baseline) in (
            ("GET /api/v1/notifications?status=dead", "/api/v1/notifications?status=dead", api, {},
             ("its count(*)", dead_count)),
            ("GET /api/v1/notifications", "/api/v1/notifications", api, {}, ("its count(*)", all_count)),
            (f"GET /api/v1/notifications?page={DEEP_PAGE}", f"/api/v1/notifications?page={DEEP_PAGE}", api, {},
             old_page),
            ("UI Dead letter tab, page 200", "/notifications/?tab=dead&page=200", {}, ui, ("its count(*)", dead_count)),
            ("GET /api/v1/stats/summary", "/api/v1/stats/summary", api, {}, ("the counts it made", old_summary)),
            ("UI dashboard /", "/", {}, ui, ("its channel table over all attempts", old_channel_table)),
            ("GET /metrics (after the fold)", "/metrics", {}, {}, ("the event counts it made", old_metrics_counts)),
        ):
            p50, p95 = timed_ms(fetch(client, path, headers, cookies), args.requests)
            row(label, f"p50 {p50:.1f} / p95 {p95:.1f} ms", f"{baseline_label}: {median_ms(baseline):.1f} ms")

        p50, p95 = timed_ms(cli_in_process, args.requests)
        row(f"CLI list --page {DEEP_PAGE} --json, in this process", f"p50 {p50:.1f} / p95 {p95:.1f} ms",
            f"{old_page[0]}: {median_ms(old_deep_page):.1f} ms")
        deep, first = cli_process_seconds(database_url, DEEP_PAGE), cli_process_seconds(database_url, 1)
        row(f"CLI list --page {DEEP_PAGE} --json, its own process", f"median {deep:.2f} s",
            f"--page 1, start-up included: {first:.2f} s")
        p50, p95 = mcp_figures(database_url, args.requests)
        row(f"MCP certctl_list_notifications page {DEEP_PAGE}, stdio", f"p50 {p50:.1f} / p95 {p95:.1f} ms",
            f"{old_page[0]}: {median_ms(old_deep_page):.1f} ms")

        dead = counts.matching({"status": "dead"})
        lines_before = log.read_text().count("\n")
        started = time.perf_counter()
        response = client.post("/api/v1/notifications/requeue", json={"status": "dead"}, headers=api)
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
