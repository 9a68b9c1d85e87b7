"""Several real `qcluster` processes on one PostgreSQL database: each event is delivered once, and a
worker killed with SIGKILL loses nothing (its leases expire and the events are sent again).

The clusters are subprocesses on the test database, each on a queue of its own name (Q_CLUSTER_NAME),
so that parallel runs sharing a Redis server do not take each other's tasks.
"""
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.brokers.redis_broker import Redis
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from notifications.models import NotificationAttempt, NotificationEvent
from tests.conftest import IN_CI
from tests.receivers import Reply

PROJECT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
EVENTS = 300
DEADLINE_S = 30
SENT_LINE = re.compile(r"of event (\S+) via \S+: success in \d+ms, now sent")


def database_url():
    """The test database, as the subprocesses must see it."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class RedisQueue(Redis):
    """django-q2's Redis broker on a given URL, whatever this process's own settings say."""

    def __init__(self, url, name):
        self.url = url
        super().__init__(list_key=name)

    def get_connection(self, list_key=None):
        return redis.from_url(self.url)


class Cluster:
    """One `manage.py qcluster` in its own process group, logging to a file."""

    def __init__(self, tmp_path, label, queue, broker_url, webhook_url, **env):
        self.label = label
        self.log_path = tmp_path / f"qcluster-{label}.log"
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CERTCTL_", "REDIS_URL", "Q_CLUSTER"))
        }
        environment.update(
            DJANGO_SETTINGS_MODULE="certctl.settings",
            SECRET_KEY=django_settings.SECRET_KEY,  # tasks are signed with it
            DATABASE_URL=database_url(),
            Q_CLUSTER_NAME=queue,
            CERTCTL_WEBHOOK_URL=webhook_url,
            CERTCTL_LOG_LEVEL="INFO",
            CERTCTL_WORKER_PROCESSES="2",
            PYTHONUNBUFFERED="1",
        )
        if broker_url:
            environment["REDIS_URL"] = broker_url
        environment.update(env)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"], cwd=PROJECT, env=environment,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def log(self):
        return self.log_path.read_text(errors="replace")

    def processes(self):
        """Live processes of this cluster's group (django-q2 logs its own start below WARNING, which is off)."""
        count = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[2]) == self.process.pid:
                count += 1
        return count

    def wait_until_running(self):
        """The cluster, its sentinel, monitor, pusher and two workers all started."""
        deadline = time.monotonic() + DEADLINE_S
        while self.processes() < 6:
            assert self.process.poll() is None, f"qcluster {self.label} exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"qcluster {self.label} did not start:\n{self.log()}"
            time.sleep(0.1)

    def sent_event_ids(self):
        return SENT_LINE.findall(self.log())

    def kill(self, signum=signal.SIGKILL):
        """The whole process group: the cluster, its sentinel, pusher, monitor and worker processes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)
        self.process.wait(timeout=10)


@pytest.fixture
def clusters(transactional_db, tmp_path):
    """Start clusters with start(label, queue, broker_url, webhook_url, **env); all are killed at teardown,
    before the test database is flushed."""
    # Schedules left in the test database by migrate would add tasks of their own.
    Schedule.objects.all().delete()
    started = []

    def start(*args, **env):
        cluster = Cluster(tmp_path, *args, **env)
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        cluster.kill()


def unique_queue():
    return f"certctl-test-{uuid.uuid4().hex[:12]}"


def redis_url_or_skip():
    try:
        redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        if IN_CI:
            pytest.fail(f"CI=true but Redis at {REDIS_URL} does not answer")
        pytest.skip(f"needs Redis at {REDIS_URL} (set REDIS_URL)")
    return REDIS_URL


def create_events(count):
    """Pending Webhook events, created without handing them to any cluster."""
    NotificationEvent.objects.bulk_create(
        NotificationEvent(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}")
        for n in range(count)
    )
    return list(NotificationEvent.objects.order_by("created_at", "id").values_list("id", flat=True))


def enqueue(broker, task, *args):
    async_task(f"notifications.tasks.{task}", *args, broker=broker)


def wait_for(condition, what):
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def event_ids_received(receiver):
    return Counter(request.headers["X-Certctl-Event-ID"] for request in receiver.requests)


def deliver_through_two_clusters(clusters, broker, broker_url, webhook):
    """300 events; a kick per event (as many uncoalesced creates would queue) and a pending pass every 25 events (as the
    schedule does), spread over two running clusters that race for the same rows."""
    queue = broker.list_key.split(":")[1] if broker_url else broker.list_key
    env = dict(CERTCTL_NOTIFICATION_BATCH_SIZE="25", CERTCTL_NOTIFICATION_CONCURRENCY="4")
    first = clusters("a", queue, broker_url, webhook.url + "/hook", **env)
    second = clusters("b", queue, broker_url, webhook.url + "/hook", **env)
    first.wait_until_running()
    second.wait_until_running()
    event_ids = create_events(EVENTS)

    tasks = 0
    for n in range(len(event_ids)):
        enqueue(broker, "deliver_pending")
        tasks += 1
        if n % 25 == 0:
            enqueue(broker, "process_pending")
            tasks += 1
    # Every task's result is saved once it has finished: then no delivery is still in flight.
    wait_for(lambda: Task.objects.count() == tasks, f"{tasks} finished tasks")

    assert Task.objects.filter(success=True).count() == tasks
    received = event_ids_received(webhook)
    assert len(webhook.requests) == EVENTS
    assert set(received) == set(event_ids)
    assert NotificationEvent.objects.filter(status="sent").count() == EVENTS
    assert NotificationAttempt.objects.count() == EVENTS
    by_first, by_second = first.sent_event_ids(), second.sent_event_ids()
    assert by_first, "the second cluster did all the work; the test shows nothing about two"
    assert by_second, "the first cluster did all the work; the test shows nothing about two"
    assert sorted(by_first + by_second) == sorted(event_ids)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_clusters_on_redis_deliver_each_of_300_events_exactly_once(clusters, webhook):
    broker_url = redis_url_or_skip()
    broker = RedisQueue(broker_url, unique_queue())
    try:
        deliver_through_two_clusters(clusters, broker, broker_url, webhook)
    finally:
        broker.delete_queue()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_clusters_on_the_orm_broker_deliver_each_of_300_events_exactly_once(clusters, webhook):
    deliver_through_two_clusters(clusters, ORM(list_key=unique_queue()), None, webhook)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_cluster_killed_mid_batch_loses_no_event_and_resends_only_what_was_in_flight(clusters, webhook):
    """At-least-once, precisely: a request that reached the receiver but whose result was never recorded
    is sent again after the lease; everything else is sent exactly once."""
    broker_url = redis_url_or_skip()
    victim_broker, survivor_broker = RedisQueue(broker_url, unique_queue()), RedisQueue(broker_url, unique_queue())
    # A short lease (connect + read timeout must stay below it) and a slow receiver, so that the kill
    # lands while deliveries are in flight.
    env = dict(
        CERTCTL_NOTIFICATION_LEASE="10s", CERTCTL_NOTIFICATION_CONNECT_TIMEOUT="2s",
        CERTCTL_NOTIFICATION_READ_TIMEOUT="5s", CERTCTL_NOTIFICATION_CONCURRENCY="4",
        CERTCTL_NOTIFICATION_BATCH_SIZE="20",
    )
    webhook.reply_with(Reply(delay=1.5))
    try:
        victim = clusters("victim", victim_broker.list_key.split(":")[1], broker_url, webhook.url + "/hook", **env)
        survivor = clusters(
            "survivor", survivor_broker.list_key.split(":")[1], broker_url, webhook.url + "/hook", **env
        )
        victim.wait_until_running()
        survivor.wait_until_running()
        event_ids = create_events(20)

        enqueue(victim_broker, "process_pending")

        def second_round_in_flight():
            return len(webhook.requests) >= 6 and NotificationEvent.objects.filter(status="sent").exists()

        wait_for(second_round_in_flight, "the victim's first results recorded and its second round of requests")
        victim.kill(signal.SIGKILL)

        reached_before_kill = set(event_ids_received(webhook))
        state = {event.id: event for event in NotificationEvent.objects.all()}
        recorded = {event_id for event_id, event in state.items() if event.status == "sent"}
        leased = {event_id: event.claimed_until for event_id, event in state.items() if event.claim_token}
        cut_mid_request = reached_before_kill - recorded
        never_attempted = set(event_ids) - reached_before_kill
        assert recorded
        assert cut_mid_request
        assert never_attempted
        # In flight at the kill, or claimed to be sent next; the rest was never claimed.
        assert cut_mid_request <= set(leased) <= cut_mid_request | never_attempted
        assert all(claimed_until > timezone.now() for claimed_until in leased.values())

        def survivor_finished():
            if NotificationEvent.objects.filter(status="sent").count() == len(event_ids):
                return True
            if survivor_broker.queue_size() == 0:
                enqueue(survivor_broker, "process_pending")
            return False

        webhook.reply_with(Reply())
        wait_for(survivor_finished, "the survivor to deliver every event after the leases expired")
        wait_for(lambda: survivor_broker.queue_size() == 0, "the survivor's last passes")
    finally:
        victim_broker.delete_queue()
        survivor_broker.delete_queue()

    received = event_ids_received(webhook)
    assert set(received) == set(event_ids)
    assert {event_id for event_id, n in received.items() if n == 2} == cut_mid_request
    assert all(received[event_id] == 1 for event_id in recorded | never_attempted)
    assert NotificationEvent.objects.filter(status="sent").count() == len(event_ids)
    assert sorted(survivor.sent_event_ids()) == sorted(cut_mid_request | never_attempted)
    for event_id, claimed_until in leased.items():
        [attempt] = NotificationAttempt.objects.filter(event_id=event_id)
        assert attempt.started_at >= claimed_until, f"{event_id} was sent again before the victim's lease expired"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_cluster_stopped_with_sigterm_mid_batch_finishes_its_deliveries_first(clusters, webhook):
    """A deploy stops workers with SIGTERM (to the cluster's main process, as `docker stop` and systemd's
    KillMode=mixed do): the batch in flight is delivered and recorded, nothing is left claimed or sent twice."""
    broker_url = redis_url_or_skip()
    broker = RedisQueue(broker_url, unique_queue())
    env = dict(
        CERTCTL_NOTIFICATION_LEASE="20s", CERTCTL_NOTIFICATION_CONNECT_TIMEOUT="2s",
        CERTCTL_NOTIFICATION_READ_TIMEOUT="5s", CERTCTL_NOTIFICATION_CONCURRENCY="4",
        CERTCTL_NOTIFICATION_BATCH_SIZE="12",
    )
    webhook.reply_with(Reply(delay=1.0))
    try:
        cluster = clusters("stopping", broker.list_key.split(":")[1], broker_url, webhook.url + "/hook", **env)
        cluster.wait_until_running()
        event_ids = create_events(12)
        enqueue(broker, "process_pending")
        wait_for(lambda: len(webhook.requests) >= 2, "the first deliveries of the batch")
        os.kill(cluster.process.pid, signal.SIGTERM)
        cluster.process.wait(timeout=DEADLINE_S)
    finally:
        broker.delete_queue()

    received = event_ids_received(webhook)
    assert set(received) == set(event_ids)
    assert set(received.values()) == {1}
    assert NotificationEvent.objects.filter(status="sent").count() == len(event_ids)
    assert not NotificationEvent.objects.exclude(claim_token=None).exists()
