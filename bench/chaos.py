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
bounded form of this run; docs/reliability.md keeps the figures of a longer one.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.test_settings")
ADMIN_KEY = "chaos-admin-" + uuid.uuid4().hex
# A send's bound in this run: connect + read timeout.
CONNECT_TIMEOUT_S = 1.0
# A result is recorded within this long of its send ending, unless the database is away.
RECORD_SLACK_S = 2.0
# While the broker is away no hand-off reaches a worker, and django-q2's pusher pauses 10 s after each broker
# error: events created then wait for the outage and up to two such pauses.
BROKER_RECOVERY_S = 20.0


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


# --- the receiver, in a process of its own ------------------------------------------


def serve_receiver(port: int, log_path: str, seed: int, error: float, slow: float, hang: float, slow_s: float,
                   hang_s: float, max_failures: int) -> None:
    """A Webhook receiver: each POST is answered 200 at once, or 500, or 200 after `slow_s`, or never (the
    connection is closed after `hang_s`), by chance; an event that failed `max_failures` times is answered
    200. Every request is written to `log_path` as a JSON line when it arrives."""
    rng = random.Random(seed)
    failures: Counter[str] = Counter()
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the server's life

    def fate(event_id: str) -> str:
        roll = rng.random()
        if failures[event_id] >= max_failures or roll >= error + slow + hang:
            return "ok"
        if roll < error:
            failures[event_id] += 1
            return "error"
        if roll < error + slow:
            return "slow"
        failures[event_id] += 1
        return "hang"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, event_id = 0, ""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"x-certctl-event-id":
                        event_id = value.strip().decode()
                if length:
                    await reader.readexactly(length)
                chosen = fate(event_id)
                log.write(json.dumps({"id": event_id, "t": time.time(), "fate": chosen}) + "\n")
                if chosen == "hang":
                    await asyncio.sleep(hang_s)
                    break
                if chosen == "slow":
                    await asyncio.sleep(slow_s)
                status = b"500 Internal Server Error" if chosen == "error" else b"200 OK"
                body = b"chaos says no" if chosen == "error" else b"ok"
                writer.write(b"HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
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


# --- the database proxy, in this process -------------------------------------------


class DatabaseProxy:
    """Forwards 127.0.0.1:port to PostgreSQL on an event loop of its own; cut() closes every connection
    and refuses new ones until resume()."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="db-proxy", daemon=True)
        self.thread.start()
        self.resume()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        self.writers |= {client_writer, server_writer}
        try:
            await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        finally:
            self.writers -= {client_writer, server_writer}

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

    async def _cut(self) -> None:
        if self.server:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()

    def resume(self) -> None:
        self._call(self._start())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


# --- the service's processes ----------------------------------------------------------


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def stop_group(process: subprocess.Popen[bytes], grace: float = 20) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class Service:
    """Redis, gunicorn and two qclusters, pointed at the proxy and a receiver."""

    def __init__(self, args: argparse.Namespace, database_url: str, receiver_url: str, tmp: Path):
        self.tmp = tmp
        self.redis_port = free_port()
        self.web_port = free_port()
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("CERTCTL_")}
        self.env.update(
            DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY="chaos-secret-" + uuid.uuid4().hex,
            DATABASE_URL=database_url, REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            CERTCTL_WEBHOOK_URL=receiver_url + "/hook", CERTCTL_API_KEYS_NAMED=f"chaos:{ADMIN_KEY}:admin",
            CERTCTL_RATE_LIMIT_RPS="0", CERTCTL_AUTH_FAILURES_PER_MINUTE="0",
            CERTCTL_NOTIFICATION_CONNECT_TIMEOUT=f"{CONNECT_TIMEOUT_S:g}s",
            CERTCTL_NOTIFICATION_READ_TIMEOUT=f"{args.read_timeout:g}s",
            CERTCTL_NOTIFICATION_BACKOFF_BASE=f"{args.backoff_base:g}s", CERTCTL_NOTIFICATION_MAX_ATTEMPTS=str(args.max_attempts),
            CERTCTL_NOTIFICATION_RETRY_INTERVAL=f"{args.retry_interval:g}s", CERTCTL_NOTIFICATION_LEASE=f"{args.lease:g}s",
            PORT=str(self.web_port), WEB_CONCURRENCY="2", PYTHONUNBUFFERED="1",
        )
        self.redis: subprocess.Popen[bytes] | None = None
        self.start_redis()
        self.web = self._spawn("web", [str(Path(sys.executable).parent / "gunicorn"), "-c", "gunicorn.conf.py", "certctl.wsgi"])
        self.clusters = [self._spawn(f"qcluster-{n}", [sys.executable, "manage.py", "qcluster"]) for n in range(2)]
        wait_for_port(self.web_port)

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            return subprocess.Popen(command, cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def start_redis(self) -> None:
        self.redis = self._spawn("redis", [
            "redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no",
        ])
        wait_for_port(self.redis_port)

    def stop_redis(self) -> None:
        assert self.redis is not None
        self.redis.kill()
        self.redis.wait()

    def kill_cluster(self, n: int) -> None:
        os.killpg(self.clusters[n].pid, signal.SIGKILL)
        self.clusters[n].wait()

    def start_cluster(self, n: int) -> None:
        self.clusters[n] = self._spawn(f"qcluster-{n}", [sys.executable, "manage.py", "qcluster"])

    def kill_web_worker(self) -> int | None:
        workers = children_of(self.web.pid)
        if not workers:
            return None
        os.kill(workers[0], signal.SIGKILL)
        return workers[0]

    def stop(self) -> None:
        for process in (self.web, *self.clusters):
            stop_group(process)
        if self.redis:
            self.stop_redis()


# --- clients -------------------------------------------------------------------------


@dataclass
class ApiResponse:
    started: float
    finished: float
    status: int | None  # None: no answer (connection error or timeout)
    retry_after: str | None
    error: str | None


@dataclass
class Creates:
    acknowledged: dict[str, str] = field(default_factory=dict)  # dedup key: event id
    abandoned: list[str] = field(default_factory=list)
    refused: list[tuple[str, int, str]] = field(default_factory=list)  # key, 4xx status, body
    responses: list[ApiResponse] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


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


# --- chaos -----------------------------------------------------------------------------


@dataclass
class Disruptions:
    cluster_kills: list[float] = field(default_factory=list)
    web_worker_kills: list[float] = field(default_factory=list)
    broker_down: list[tuple[float, float]] = field(default_factory=list)
    database_down: list[tuple[float, float]] = field(default_factory=list)


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


# --- checks ----------------------------------------------------------------------------


@dataclass
class Report:
    figures: list[tuple[str, str]] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    def figure(self, label: str, value: object) -> None:
        self.figures.append((label, str(value)))

    def promise(self, kept: bool, text: str) -> None:
        if not kept:
            self.broken.append(text)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def analyse(args: argparse.Namespace, creates: Creates, disruptions: Disruptions, receiver_log: Path, run_id: str,
            drained: bool, drain_s: float) -> Report:
    from notifications.engine.backoff import RetryPolicy, backoff_delay
    from notifications.models import NotificationAttempt, NotificationEvent

    report = Report()
    policy = RetryPolicy(base=timedelta(seconds=args.backoff_base), cap=timedelta(hours=1), max_attempts=args.max_attempts)
    bound = CONNECT_TIMEOUT_S + args.read_timeout

    # Creates: every acknowledged one exists exactly once.
    events = {event.id: event for event in NotificationEvent.objects.filter(dedup_key__startswith=f"chaos-{run_id}-")}
    keys = Counter(event.dedup_key for event in events.values())
    report.figure("creates acknowledged / refused (4xx) / abandoned", f"{len(creates.acknowledged)} / {len(creates.refused)} / {len(creates.abandoned)}")
    report.figure("events in the database", len(events))
    report.promise(not creates.refused, f"the API refused {len(creates.refused)} creates: {creates.refused[:3]}")
    report.promise(not creates.abandoned, f"{len(creates.abandoned)} creates never acknowledged")
    report.promise(all(count == 1 for count in keys.values()), "a dedup key has more than one event")
    report.promise(len(events) == len(creates.acknowledged), f"{len(events)} events for {len(creates.acknowledged)} acknowledged creates")
    missing = [key for key, event_id in creates.acknowledged.items() if event_id not in events]
    report.promise(not missing, f"{len(missing)} acknowledged creates have no event: {missing[:3]}")

    # After the drain: sent or dead, no lease.
    statuses = Counter(event.status for event in events.values())
    leased = sum(1 for event in events.values() if event.claimed_until is not None)
    report.figure("after the drain: " + ", ".join(f"{status} {n}" for status, n in sorted(statuses.items())), f"{drain_s:.1f} s drain")
    report.figure("leases left", leased)
    report.promise(drained, f"not drained within {args.drain_timeout}s")
    report.promise(set(statuses) <= {"sent", "dead"}, f"events neither sent nor dead: {dict(statuses)}")
    report.promise(leased == 0, f"{leased} leases left after the drain")

    # Attempts against the receiver's requests.
    requests: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with receiver_log.open() as lines:
        for line in lines:
            request = json.loads(line)
            if request["id"] in events:
                requests[request["id"]].append(request)
    attempts: dict[str, list[NotificationAttempt]] = defaultdict(list)
    for attempt in NotificationAttempt.objects.filter(event_id__in=list(events)).order_by("event_id", "number"):
        attempts[attempt.event_id].append(attempt)
    unmatched_requests: dict[str, list[float]] = defaultdict(list)
    unmatched_attempts = 0
    for event_id in events:
        pending = sorted(requests[event_id], key=lambda request: request["t"])
        for attempt in attempts[event_id]:
            started = attempt.started_at.timestamp()
            # The request reached the receiver while the attempt lasted; on a starved machine that can be
            # seconds after it started, long past the connect timeout.
            ended = started + attempt.duration_ms / 1000
            match = next((r for r in pending if started - 0.5 <= r["t"] <= ended + 1), None)
            if match is None:
                unmatched_attempts += 1
            else:
                pending.remove(match)
        unmatched_requests[event_id] = [request["t"] for request in pending]

    def in_flight_at_kill(arrived: float) -> bool:
        """A kill came while this request's delivery could not yet be recorded."""
        for killed in disruptions.cluster_kills:
            window = bound + RECORD_SLACK_S
            if any(down <= killed and up >= arrived for down, up in disruptions.database_down):
                window += 30  # recording retries a database error for DATABASE_RETRY_FOR
            if arrived - 0.5 <= killed <= arrived + window:
                return True
        return False

    lost = [t for times in unmatched_requests.values() for t in times]
    unexplained = [t for t in lost if not in_flight_at_kill(t)]
    total_requests = sum(len(r) for r in requests.values())
    total_attempts = sum(len(a) for a in attempts.values())
    report.figure("receiver requests / attempt rows", f"{total_requests} / {total_attempts}")
    report.figure("requests without an attempt row (in flight at a kill / unexplained)", f"{len(lost) - len(unexplained)} / {len(unexplained)}")
    report.promise(not unexplained, f"{len(unexplained)} receiver requests have no attempt row and no kill explains them")
    report.promise(unmatched_attempts == 0, f"{unmatched_attempts} attempt rows have no receiver request")
    fates = Counter(request["fate"] for rs in requests.values() for request in rs)
    report.figure("receiver answers: " + ", ".join(f"{fate} {n}" for fate, n in sorted(fates.items())),
                  f"{100 * (fates['error'] + fates['hang'] + fates['slow']) / max(1, total_requests):.0f} % troubled")
    duplicates = sum(max(0, sum(1 for r in rs if r["fate"] in ("ok", "slow")) - 1) for rs in requests.values())
    report.figure("duplicate successful deliveries at the receiver", duplicates)
    report.promise(duplicates <= len(lost), f"{duplicates} duplicates at the receiver, more than the {len(lost)} deliveries in flight at kills")

    # The API: no 5xx but 503 + Retry-After while the database was away.
    def database_away(response: ApiResponse) -> bool:
        return any(down - 1 <= response.finished and response.started <= up + 2 for down, up in disruptions.database_down)

    server_errors = [r for r in creates.responses if r.status is not None and r.status >= 500]
    outside = [r for r in server_errors if not database_away(r)]
    without_retry_after = [r for r in server_errors if r.status != 503 or not r.retry_after]
    answers = Counter(r.status or 0 for r in creates.responses)
    report.figure("API answers: " + ", ".join(f"{status or 'no answer'} {n}" for status, n in sorted(answers.items())), "")
    report.figure("API 5xx outside the database outage / not 503 + Retry-After", f"{len(outside)} / {len(without_retry_after)}")
    report.promise(not outside, f"{len(outside)} API 5xx outside the database outage: {[(r.status, r.started) for r in outside[:3]]}")
    report.promise(not without_retry_after, f"{len(without_retry_after)} API 5xx not 503 with Retry-After")

    # Retries: outside the outages, none starts more than one interval after it was due.
    outages = [*disruptions.broker_down, *disruptions.database_down]
    lateness: list[float] = []
    excused = 0
    forced_wait: dict[str, float] = {}
    for event_id, rows in attempts.items():
        failures = 0
        forced = 0.0
        for previous, following in zip(rows, rows[1:], strict=False):
            if previous.resulting_status is None or previous.outcome == "success":
                continue
            failures += 1
            wait = backoff_delay(failures, policy).total_seconds()
            forced += previous.duration_ms / 1000 + wait
            due = previous.started_at.timestamp() + previous.duration_ms / 1000 + wait
            started = following.started_at.timestamp()
            lost_between = any(previous.started_at.timestamp() < t < started for t in unmatched_requests[event_id])
            if lost_between or any(down - bound <= due <= up for down, up in outages):
                excused += 1
                continue
            lateness.append(started - due)
        last = rows[-1] if rows else None
        if last and last.outcome != "success" and last.resulting_status is not None:
            forced += last.duration_ms / 1000
            if last.resulting_status == "failed":  # never retried: late by now
                due = last.started_at.timestamp() + last.duration_ms / 1000 + backoff_delay(failures + 1, policy).total_seconds()
                lateness.append(time.time() - due)
        # A delivery lost with a killed worker is sent again once its lease expires: the kill forced that wait.
        for lost_at in unmatched_requests[event_id]:
            later = [a.started_at.timestamp() for a in rows if a.started_at.timestamp() > lost_at]
            forced += (min(later) if later else time.time()) - lost_at
        forced_wait[event_id] = forced
    late = [value for value in lateness if value > args.retry_interval]
    report.figure("retries started after due: p50 / p99 / max (excused by an outage or a kill)",
                  f"{percentile(lateness, 0.5):.1f} / {percentile(lateness, 0.99):.1f} / {max(lateness, default=0):.1f} s ({excused})")
    report.figure(f"retries started more than {args.retry_interval:g}s after due", f"{len(late)} of {len(lateness)}")
    report.promise(not late, f"{len(late)} retries started more than one interval ({args.retry_interval:g}s) after due")

    # Create → sent.
    def broker_away(event: NotificationEvent) -> bool:
        """Waiting for delivery while the broker was away: no new pass could start."""
        created, sent_at = event.created_at.timestamp(), event.sent_at.timestamp() if event.sent_at else time.time()
        return any(created <= up + BROKER_RECOVERY_S and sent_at >= down for down, up in disruptions.broker_down)

    to_sent = {event.id: (event.sent_at - event.created_at).total_seconds() for event in events.values() if event.sent_at}
    latencies = list(to_sent.values())
    beyond_forced = [seconds - forced_wait.get(event_id, 0) for event_id, seconds in to_sent.items() if not broker_away(events[event_id])]
    report.figure("create → sent p50 / p99 / max", f"{percentile(latencies, 0.5):.1f} / {percentile(latencies, 0.99):.1f} / {max(latencies, default=0):.1f} s")
    report.figure(f"the same less the wait the receiver and the kills forced, {len(beyond_forced)} events not waiting "
                  f"during the broker outage (+{BROKER_RECOVERY_S:g}s): p50 / p99 / max",
                  f"{percentile(beyond_forced, 0.5):.1f} / {percentile(beyond_forced, 0.99):.1f} / {max(beyond_forced, default=0):.1f} s")
    report.promise(percentile(beyond_forced, 0.99) < 30, "create → sent p99 exceeds 30 s plus the wait the receiver and the kills forced")
    return report


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
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username or ''}{'@' if parts.username else ''}127.0.0.1:{proxy.port}"))
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
            creates = create_events(service.web_port, run_id, args.events, args.duration, args.clients, give_up_after=120)
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
