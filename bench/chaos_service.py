"""The chaos run's moving parts (bench/chaos.py): free ports, the failing Webhook receiver (a process of its
own), the database proxy (in the run's process) and the service's processes (Redis, gunicorn, two qclusters)."""
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
from collections import Counter
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "chaos-admin-" + uuid.uuid4().hex
# A send's bound in this run: connect + read timeout.
CONNECT_TIMEOUT_S = 1.0


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
            CERTCTL_NOTIFICATION_BACKOFF_BASE=f"{args.backoff_base:g}s",
            CERTCTL_NOTIFICATION_MAX_ATTEMPTS=str(args.max_attempts),
            CERTCTL_NOTIFICATION_RETRY_INTERVAL=f"{args.retry_interval:g}s",
            CERTCTL_NOTIFICATION_LEASE=f"{args.lease:g}s",
            PORT=str(self.web_port), WEB_CONCURRENCY="2", PYTHONUNBUFFERED="1",
        )
        self.redis: subprocess.Popen[bytes] | None = None
        self.start_redis()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.web = self._spawn("web", [gunicorn, "-c", "gunicorn.conf.py", "certctl.wsgi"])
        self.clusters = [self._spawn(f"qcluster-{n}", [sys.executable, "manage.py", "qcluster"]) for n in range(2)]
        wait_for_port(self.web_port)

    def _spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                command, cwd=PROJECT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

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

