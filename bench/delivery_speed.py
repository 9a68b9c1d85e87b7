"""Delivery speed, side by side in one run: a bare HTTP loop, the project's sweep, and the end-to-end path.

    DATABASE_URL=postgres://certctl@127.0.0.1:5432/certctl_bench REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python bench/delivery_speed.py

For each receiver latency (50 ms and 0 ms) it measures, against the same receiver:
- a bare keep-alive HTTP loop (httpx), one request at a time and with N threads: the baseline;
- `notifications sweep` (passes.process_pending) over pending events, at the default concurrency;
- end to end: gunicorn (2 workers) and one `qcluster` (Redis broker), events created through
  POST /api/v1/notifications by 8 client threads: time from the last create to the last event sent;
and, once: the first-attempt latency of single events created on an idle system (p50/p95 of 50), and the
memory of the qcluster process tree (PSS, shared pages counted once) while it delivers many events
(--rss-events).

The receiver is a small asyncio HTTP/1.1 server in a process of its own (inside the worker's interpreter
it would share its GIL and distort both sides). The database must be PostgreSQL; its tables are migrated and
emptied. Not part of the test run. Figures and the command: docs/performance.md.
"""
import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.test_settings")
ADMIN_KEY = "bench-admin-" + uuid.uuid4().hex
# A queue of its own, shared by the benchmarked cluster and this process (which queues a kick itself).
QUEUE = "bench-" + uuid.uuid4().hex[:8]
# Tasks are signed: the cluster must share this process's key to accept its kick.
SECRET_KEY = "bench-secret-" + uuid.uuid4().hex


# --- the receiver, in a process of its own ------------------------------------------


def serve_receiver(port: int, latency: float) -> None:
    """Answer every POST with 200 after `latency` seconds; GET /count returns how many POSTs came."""
    received = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal received
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET /count"):
                    body = str(received).encode()
                else:
                    received += 1
                    if latency:
                        await asyncio.sleep(latency)
                    body = b"ok"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout}s")


def start_receiver(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "receiver", str(port), str(latency)])
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


# --- measurements --------------------------------------------------------------------


def bare_loop(url: str, requests: int, threads: int) -> float:
    """Requests per second of plain keep-alive POSTs, as certctl's loop (1 thread) or a thread pool makes them."""
    import httpx

    body = b'{"id":"bench","message":"certificate expiring"}'
    with httpx.Client(limits=httpx.Limits(max_connections=threads, max_keepalive_connections=threads)) as client:
        def post(_: int) -> None:
            client.post(url + "/hook", content=body, headers={"Content-Type": "application/json"}).raise_for_status()

        started = time.perf_counter()
        if threads == 1:
            for n in range(requests):
                post(n)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(post, range(requests)))
        return requests / (time.perf_counter() - started)


def make_pending(count: int) -> None:
    from notifications.models import NotificationEvent

    NotificationEvent.objects.bulk_create(
        (
            NotificationEvent(
                type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"event {n}"
            )
            for n in range(count)
        ),
        batch_size=5000,
    )


def clear_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE notification_attempts, notification_operator_actions, notification_events CASCADE")
        cursor.execute("TRUNCATE django_q_task, django_q_ormq")


def sweep(url: str, events: int) -> float:
    """Events per second of one `notifications sweep` over `events` pending events."""
    from django.conf import settings

    from notifications.engine import passes
    from notifications.models import NotificationEvent

    settings.CERTCTL_WEBHOOK_URL = url + "/hook"
    clear_tables()
    make_pending(events)
    started = time.perf_counter()
    passes.process_pending()
    elapsed = time.perf_counter() - started
    sent = NotificationEvent.objects.filter(status="sent").count()
    assert sent == events, f"sweep sent {sent} of {events}"
    return events / elapsed


class Service:
    """gunicorn and one qcluster on the bench database, pointed at a receiver."""

    def __init__(self, receiver_url: str, tmp: Path):
        self.port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("CERTCTL_")}
        env.update(
            DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY=SECRET_KEY,
            CERTCTL_WEBHOOK_URL=receiver_url + "/hook", CERTCTL_API_KEYS_NAMED=f"bench:{ADMIN_KEY}:admin",
            CERTCTL_RATE_LIMIT_RPS="0", Q_CLUSTER_NAME=QUEUE, PORT=str(self.port),
            PYTHONUNBUFFERED="1",
        )
        self.log = (tmp / "service.log").open("ab")
        self.web = subprocess.Popen(
            [
                str(PROJECT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
                "certctl.wsgi",
            ],
            cwd=PROJECT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=PROJECT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port)
        time.sleep(2)  # the cluster's worker processes start

    def stop(self) -> None:
        for process in (self.web, self.worker):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
        self.log.close()

    def tree_memory_mb(self) -> float:
        """Memory of the qcluster process and all its descendants, as PSS: the forked workers share most of
        their pages with the main process, and adding up their RSS would count those pages once per process."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        total, todo = 0, [self.worker.pid]
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, []))
            try:
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024


def create_through_api(port: int, count: int, clients: int) -> tuple[float, float]:
    """POST `count` events with `clients` threads; returns (start, end) of the creates (time.time())."""
    import httpx

    def create(n: int) -> None:
        with_client.post(
            f"http://127.0.0.1:{port}/api/v1/notifications",
            json={
                "type": "RenewalFailure", "channel": "Webhook", "recipient": "ops@example.com",
                "message": f"renewal {n} failed",
            },
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ).raise_for_status()

    with httpx.Client(limits=httpx.Limits(max_connections=clients), timeout=30) as with_client:
        started = time.time()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(create, range(count)))
        return started, time.time()


def wait_all_sent(count: int, timeout: float = 600) -> float:
    from notifications.models import NotificationEvent

    deadline = time.monotonic() + timeout
    while NotificationEvent.objects.filter(status="sent").count() < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all {count} events were sent within {timeout}s")
        time.sleep(0.02)
    return time.time()


def end_to_end(service: Service, events: int) -> tuple[float, float, float]:
    """(seconds the creates took, seconds from the last create to the last send, overall events/s)."""
    clear_tables()
    started, created = create_through_api(service.port, events, clients=8)
    finished = wait_all_sent(events)
    return created - started, finished - created, events / (finished - started)


def single_event_latency(service: Service, samples: int) -> tuple[float, float]:
    """p50 and p95 of create → first attempt start, one event at a time on an idle system."""
    from notifications.models import NotificationAttempt

    clear_tables()
    delays = []
    for n in range(samples):
        started, _ = create_through_api(service.port, 1, clients=1)
        wait_all_sent(n + 1)
        attempt = NotificationAttempt.objects.order_by("-id").first()
        assert attempt is not None
        delays.append(attempt.started_at.timestamp() - started)
        time.sleep(0.2)
    delays.sort()
    return statistics.median(delays), delays[int(len(delays) * 0.95) - 1]


def memory_while_delivering(service: Service, events: int) -> tuple[float, float, float, float]:
    """Memory (PSS) of the qcluster tree (MB) at the start, its peak, and its last sample; and events/s."""
    from notifications.engine import dispatch

    clear_tables()
    make_pending(events)
    samples = [service.tree_memory_mb()]
    started = time.time()
    dispatch.request_kick()
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(service.tree_memory_mb())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        finished = wait_all_sent(events, timeout=3600)
    finally:
        done.set()
        sampler.join()
    return samples[0], max(samples), samples[-1], events / (finished - started)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "receiver":
        serve_receiver(int(sys.argv[2]), float(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop-requests", type=int, default=300, help="requests of the one-at-a-time loop")
    parser.add_argument("--requests", type=int, default=3000, help="requests of the threaded loops")
    parser.add_argument("--events", type=int, default=3000, help="events of each sweep")
    parser.add_argument("--burst", type=int, default=1000, help="events created through the API")
    parser.add_argument("--singles", type=int, default=50, help="single events for the first-attempt latency")
    parser.add_argument("--rss-events", type=int, default=100_000, help="events delivered while memory is sampled")
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.05, 0.0])
    args = parser.parse_args()

    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database for the benchmark (its tables are emptied)")
    if not os.environ.get("REDIS_URL"):
        sys.exit("set REDIS_URL: the end-to-end path runs qcluster on the Redis broker")
    os.environ["Q_CLUSTER_NAME"] = QUEUE
    os.environ["SECRET_KEY"] = SECRET_KEY
    import django

    django.setup()
    import logging

    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # The sweep's per-attempt lines would go to this terminal.
    logging.getLogger("notifications").setLevel(logging.WARNING)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"certctl-bench-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str]] = []

    def row(label: str, figure: str) -> None:
        rows.append((label, figure))
        print(f"{label:<78} {figure}", flush=True)

    print(f"concurrency {settings.CERTCTL_NOTIFICATION_CONCURRENCY}, per destination "
          f"{settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY}; logs of gunicorn and qcluster in {tmp}")
    for latency in args.latencies:
        ms = f"{latency * 1000:.0f} ms"
        receiver, url = start_receiver(latency)
        service = None
        try:
            one = bare_loop(url, args.loop_requests, 1)
            row(f"[{ms}] bare keep-alive loop, one at a time (certctl's sweep)", f"{one:8.1f}/s")
            for threads in (16, 64):
                rate = bare_loop(url, args.requests, threads)
                row(f"[{ms}] bare keep-alive loop, {threads} threads", f"{rate:8.1f}/s")
                if threads == 64:
                    best_bare = rate
            rate = sweep(url, args.events)
            row(f"[{ms}] notifications sweep, {args.events} pending events", f"{rate:8.1f}/s")
            row(f"[{ms}]   sweep / one-at-a-time loop", f"{rate / one:8.1f}x")
            row(f"[{ms}]   sweep / 64-thread loop", f"{100 * rate / best_bare:7.0f} %")
            service = Service(url, tmp)
            creating, after_last, overall = end_to_end(service, args.burst)
            row(
                f"[{ms}] end to end, {args.burst} created through the API by 8 clients: creates took",
                f"{creating:8.2f} s",
            )
            row(f"[{ms}]   all sent after the last create returned", f"{after_last:8.2f} s")
            row(f"[{ms}]   overall", f"{overall:8.1f}/s")
            if latency == args.latencies[0] and args.singles:
                p50, p95 = single_event_latency(service, args.singles)
                row(f"[{ms}] one event on an idle system: create → first attempt, p50 / p95 of {args.singles}",
                    f"{p50 * 1000:5.0f} / {p95 * 1000:.0f} ms")
            if latency == args.latencies[-1] and args.rss_events:
                first, peak, last, rate = memory_while_delivering(service, args.rss_events)
                row(f"[{ms}] qcluster tree memory (PSS) delivering {args.rss_events} events: start / peak / end",
                    f"{first:.0f} / {peak:.0f} / {last:.0f} MB")
                row(f"[{ms}]   at", f"{rate:8.1f}/s")
        finally:
            if service:
                service.stop()
            receiver.terminate()
            receiver.wait()
    clear_tables()


if __name__ == "__main__":
    main()
