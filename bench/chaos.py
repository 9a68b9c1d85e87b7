"""Chaos run: events created through the API while workers, the broker, a web worker and the database fail.

    DATABASE_URL=postgres://certctl@127.0.0.1:5432/certctl_chaos .venv/bin/python bench/chaos.py \\
        --events 3000 --duration 180

Everything runs on 127.0.0.1, in processes of its own: a TCP proxy (asyncio, in this process) between the
service and PostgreSQL, so that the database can be cut without touching the shared server; a Redis server
(the broker) on a free port; gunicorn (2 workers) and two `manage.py qcluster`, each in its own process
group, pointed at the proxy and that Redis; a Webhook receiver that fails about 30 % of requests (500s, slow
answers, hangs past the read timeout) and writes every request (event id, time) to a file.

Client threads create `--events` events through POST /api/v1/notifications over `--duration` seconds, each
with a dedup key, retrying connection errors, 429 and 5xx with the same key. Meanwhile a whole qcluster
process group is SIGKILLed every `--kill-every` seconds and restarted, one gunicorn worker is killed, the
broker is stopped for `--broker-down` seconds and the database cut for `--database-down` seconds. Then the
run waits until every event is sent or dead and no lease is held (at most `--drain-timeout`), checks the
promises of docs/reliability.md, prints a table of figures, and exits 1 when a promise is broken.

The database named by DATABASE_URL is created when missing, migrated and emptied. tests/chaos runs a
bounded form of this run; docs/reliability.md keeps the figures of a longer one. The receiver, the proxy and the
service's processes are in chaos_service.py; the record of a run and the checks of its promises in chaos_checks.py.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from chaos_checks import ApiResponse, Creates, Disruptions, Report, analyse
from chaos_service import ADMIN_KEY, PROJECT, DatabaseProxy, Service, free_port, serve_receiver, wait_for_port

sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.test_settings")


def create_events(port: int, run_id: str, count: int, duration: float, clients: int, give_up_after: float) -> Creates:
    """`count` creates spread evenly over `duration` seconds by `clients` threads, each retried with its dedup
    key until acknowledged (at most `give_up_after` seconds)."""
    import httpx

    creates = Creates()
    url = f"http://127.0.0.1:{port}/api/v1/notifications"
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    begin = time.time()
    local = threading.local()

    def create(n: int) -> None:
        time.sleep(max(0.0, begin + n * duration / count - time.time()))
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=15)
        key = f"chaos-{run_id}-{n}"
        body = {"type": "RenewalFailure", "channel": "Webhook", "recipient": "ops@example.com",
                "message": f"renewal {n} failed", "dedup_key": key}
        deadline = time.time() + give_up_after
        while time.time() < deadline:
            started = time.time()
            try:
                response = local.client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                with creates.lock:
                    creates.responses.append(ApiResponse(started, time.time(), None, None, type(exc).__name__))
                time.sleep(0.5)
                continue
            retry_after = response.headers.get("Retry-After")
            with creates.lock:
                creates.responses.append(ApiResponse(started, time.time(), response.status_code, retry_after, None))
            if response.status_code in (200, 201):
                with creates.lock:
                    creates.acknowledged[key] = response.json()["id"]
                return
            if response.status_code == 429 or response.status_code >= 500:
                try:
                    wait = float(retry_after or 1)
                except ValueError:
                    wait = 1.0
                time.sleep(min(wait, 5.0))
                continue
            with creates.lock:
                creates.refused.append((key, response.status_code, response.text[:300]))
            return
        with creates.lock:
            creates.abandoned.append(key)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(create, range(count)))
    return creates


def make_chaos(service: Service, proxy: DatabaseProxy, args: argparse.Namespace, stop: threading.Event,
               rng: random.Random) -> Disruptions:
    """The disruptions of one run, on a timeline over the create phase; returns when `stop` is set."""
    disruptions = Disruptions()
    begin = time.time()
    at = {
        "web": begin + 0.2 * args.duration,
        "broker": begin + 0.3 * args.duration,
        "database": begin + 0.6 * args.duration,
    }
    next_kill = begin + rng.uniform(*args.kill_every)
    victim = 0
    broker_down_at: float | None = None
    database_down_at: float | None = None
    while True:
        stopping = stop.wait(0.2)
        now = time.time()
        if broker_down_at is not None and (stopping or now >= broker_down_at + args.broker_down):
            service.start_redis()
            disruptions.broker_down.append((broker_down_at, time.time()))
            broker_down_at = None
        if database_down_at is not None and (stopping or now >= database_down_at + args.database_down):
            proxy.resume()
            disruptions.database_down.append((database_down_at, time.time()))
            database_down_at = None
        if stopping:
            break
        if now >= next_kill:
            service.kill_cluster(victim)
            disruptions.cluster_kills.append(time.time())
            time.sleep(1)
            service.start_cluster(victim)
            victim = 1 - victim
            next_kill = time.time() + rng.uniform(*args.kill_every)
        if "web" in at and now >= at["web"]:
            del at["web"]
            if service.kill_web_worker():
                disruptions.web_worker_kills.append(time.time())
        if "broker" in at and now >= at["broker"]:
            del at["broker"]
            broker_down_at = time.time()
            service.stop_redis()
        if "database" in at and now >= at["database"]:
            del at["database"]
            database_down_at = time.time()
            proxy.cut()
    return disruptions


# --- the run ------------------------------------------------------------------------


def prepare_database(url: str, retry_interval: float) -> None:
    """Create the database when missing, migrate it and empty the tables the run reads."""
    import psycopg

    # Migrating writes the schedules, from these settings.
    os.environ["CERTCTL_NOTIFICATION_RETRY_INTERVAL"] = f"{retry_interval:g}s"

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notification_attempts, notification_operator_actions, notification_events CASCADE")
        cursor.execute("TRUNCATE django_q_task, django_q_ormq")
        cursor.execute("UPDATE django_q_schedule SET next_run = now()")


def drain(timeout: float, run_id: str) -> tuple[bool, float]:
    """Wait until every event of the run is sent or dead and no lease is held."""
    from django.db.models import Q

    from notifications.models import NotificationEvent

    started = time.monotonic()
    open_events = NotificationEvent.objects.filter(dedup_key__startswith=f"chaos-{run_id}-").filter(
        Q(status__in=("pending", "failed")) | Q(claimed_until__isnull=False)
    )
    while time.monotonic() - started < timeout:
        if not open_events.exists():
            return True, time.monotonic() - started
        time.sleep(0.5)
    return False, time.monotonic() - started


def run(args: argparse.Namespace, print_line: Callable[[str], None] = print) -> Report:
    database_url = os.environ["DATABASE_URL"]
    prepare_database(database_url, args.retry_interval)
    run_id = uuid.uuid4().hex[:8]
    rng = random.Random(args.seed)
    tmp = Path(args.logs or (Path(os.environ.get("TMPDIR", "/tmp")) / f"certctl-chaos-{os.getpid()}"))
    tmp.mkdir(parents=True, exist_ok=True)
    receiver_log = tmp / "receiver.jsonl"
    receiver_log.write_text("")
    receiver_port = free_port()
    receiver = subprocess.Popen([
        sys.executable, __file__, "receiver", str(receiver_port), str(receiver_log), str(args.seed),
        str(args.error_rate), str(args.slow_rate), str(args.hang_rate), str(args.slow_s), str(args.read_timeout + 3),
        str(args.max_failures_per_event),
    ])
    parts = urlsplit(database_url)
    proxy = DatabaseProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    user = f"{parts.username}@" if parts.username else ""
    proxied = urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))
    service = None
    try:
        wait_for_port(receiver_port)
        service = Service(args, proxied, f"http://127.0.0.1:{receiver_port}", tmp)
        time.sleep(2)  # the clusters' worker processes start
        print_line(f"run {run_id}: {args.events} events over {args.duration:g}s; logs in {tmp}")
        stop = threading.Event()
        chaos: dict[str, Disruptions] = {}

        def disrupt() -> None:
            assert service is not None
            chaos["d"] = make_chaos(service, proxy, args, stop, rng)

        chaos_thread = threading.Thread(target=disrupt, name="chaos")
        chaos_thread.start()
        try:
            creates = create_events(
                service.web_port, run_id, args.events, args.duration, args.clients, give_up_after=120
            )
        finally:
            stop.set()
            chaos_thread.join()
        disruptions = chaos["d"]
        print_line(f"creates done; {len(disruptions.cluster_kills)} qcluster kills, draining")
        drained, drain_s = drain(args.drain_timeout, run_id)
        report = analyse(args, creates, disruptions, receiver_log, run_id, drained, drain_s)
        report.figure("qcluster kills / web worker kills / broker down / database cut",
                      f"{len(disruptions.cluster_kills)} / {len(disruptions.web_worker_kills)} / "
                      + " + ".join(f"{up - down:.0f}s" for down, up in disruptions.broker_down) + " / "
                      + " + ".join(f"{up - down:.0f}s" for down, up in disruptions.database_down))
    finally:
        if service:
            service.stop()
        proxy.close()
        receiver.terminate()
        receiver.wait()
    width = max(len(label) for label, _ in report.figures)
    for label, value in report.figures:
        print_line(f"{label:<{width}}  {value}")
    for text in report.broken:
        print_line(f"BROKEN: {text}")
    print_line("all promises kept" if not report.broken else f"{len(report.broken)} promises broken")
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--duration", type=float, default=180, help="seconds over which the events are created")
    parser.add_argument("--clients", type=int, default=8, help="client threads")
    parser.add_argument("--kill-every", type=float, nargs=2, default=[20, 40], metavar=("MIN", "MAX"),
                        help="seconds between SIGKILLs of a whole qcluster process group")
    parser.add_argument("--broker-down", type=float, default=15, help="seconds the Redis broker is stopped")
    parser.add_argument("--database-down", type=float, default=10, help="seconds the database is cut")
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument("--error-rate", type=float, default=0.15, help="share of requests answered 500")
    parser.add_argument("--slow-rate", type=float, default=0.05, help="share answered 200 after --slow-s")
    parser.add_argument("--hang-rate", type=float, default=0.10, help="share never answered (past the read timeout)")
    parser.add_argument("--slow-s", type=float, default=1.5)
    parser.add_argument("--max-failures-per-event", type=int, default=2, help="the receiver then answers 200")
    parser.add_argument("--read-timeout", type=float, default=2)
    parser.add_argument("--backoff-base", type=float, default=1)
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--retry-interval", type=float, default=60)
    parser.add_argument("--lease", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--logs", help="directory for the processes' logs and the receiver's record")
    parser.add_argument("--json", help="write the figures and broken promises to this file")
    return parser.parse_args(argv)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        port, log_path, seed, error, slow, hang, slow_s, hang_s, max_failures = sys.argv[2:11]
        serve_receiver(int(port), log_path, int(seed), float(error), float(slow), float(hang), float(slow_s),
                       float(hang_s), int(max_failures))
        return
    args = parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database for the chaos run (it is created if missing, and emptied)")
    report = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps({"figures": report.figures, "broken": report.broken}, indent=1))
    sys.exit(1 if report.broken else 0)


if __name__ == "__main__":
    main()
