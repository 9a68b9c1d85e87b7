"""The delivery engine per destination: two stored Webhook destinations, each with its own receiver and signing
secret, get only their own events; an outage, a pause or disabling one holds its events only."""
import hashlib
import hmac
import logging

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications import sealing
from notifications.actors import Actor
from notifications.engine import passes
from notifications.errors import DestinationNotFound
from notifications.models import ConfigurationAction, Destination, NotificationAttempt, NotificationEvent, Status
from notifications.notifiers import refresh_stored_secrets
from notifications.operations.events import create_event
from notifications.operations.pausing import pause_destination, resume_destination
from notifications.queries.destination_health import destination_states
from tests.deliveries import state_of
from tests.lifecycle.conftest import MINUTE, T0
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.django_db

OPERATOR = Actor("alice", "api")
SECRETS = {"payments": "payments-signing-secret-1f0a", "edge": "edge-signing-secret-9c2b"}


@pytest.fixture(autouse=True)
def _breaker_defaults(settings):
    settings.CERTCTL_CHANNEL_BREAKER_FAILURES = 5
    settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS = 3
    settings.CERTCTL_CHANNEL_BREAKER_PROBE = MINUTE


@pytest.fixture
def receivers():
    servers = {name: Receiver().start() for name in SECRETS}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def destinations(receivers):
    """Two stored Webhook destinations: the URL is a secret field of the Webhook notifier, so it is sealed too."""
    Destination.objects.ensure_environment()
    for name, secret in SECRETS.items():
        Destination.objects.create(
            name=name, channel="Webhook",
            sealed_secrets=sealing.seal({"url": receivers[name].url + f"/{name}", "secret": secret}),
        )
    return receivers


def alert(destination, n, moment=T0):
    with time_machine.travel(moment, tick=False):
        event, _ = create_event(
            type="RenewalFailure", destination=destination, recipient="ops@example.com",
            message=f"{destination} renewal {n} failed",
        )
    return event


def statuses(destination):
    return sorted(NotificationEvent.objects.filter(destination=destination).values_list("status", flat=True))


def test_each_destination_gets_only_its_own_events_signed_with_its_own_secret(destinations):
    sent = {name: {alert(name, n).id for n in range(3)} for name in SECRETS}

    assert passes.process_pending(now=T0).outcomes == {"sent": 6}

    for name, receiver in destinations.items():
        assert {request.json()["id"] for request in receiver.requests} == sent[name]
        for request in receiver.requests:
            assert request.path == f"/{name}"
            expected = "sha256=" + hmac.new(SECRETS[name].encode(), request.body, hashlib.sha256).hexdigest()
            assert request.headers["X-Certctl-Signature"] == expected


def test_an_outage_of_one_destination_opens_its_breaker_while_the_other_keeps_delivering(destinations, caplog):
    destinations["payments"].reply_with(Reply(status=500, body="payments receiver down"))
    for n in range(5):
        alert("payments", n)
        alert("edge", n)

    with caplog.at_level(logging.WARNING, logger="notifications.breaker"):
        passes.process_pending(now=T0)

    assert state_of("payments").state == "open"
    assert state_of("edge") is None or state_of("edge").state == "closed"
    assert statuses("edge") == [Status.SENT] * 5
    breaker_lines = [record for record in caplog.records if record.name == "notifications.breaker"]
    assert [record.destination for record in breaker_lines] == ["payments"]
    assert breaker_lines[0].getMessage().startswith(
        "payments circuit breaker opened after 5 consecutive transient failures"
    )

    # While it is open, new events of the other destination still go at once; the open one's wait.
    held, flowing = alert("payments", 99, T0 + MINUTE / 2), alert("edge", 99, T0 + MINUTE / 2)
    passes.process_pending(now=T0 + MINUTE / 2)
    assert NotificationEvent.objects.get(id=flowing.id).status == Status.SENT
    held = NotificationEvent.objects.get(id=held.id)
    assert (held.status, held.attempt_count) == (Status.PENDING, 0)
    assert len(destinations["payments"].requests) == 5


def test_pausing_one_destination_holds_only_its_events_until_it_is_resumed(destinations):
    assert pause_destination("payments", OPERATOR, now=T0)
    for n in range(2):
        alert("payments", n)
        alert("edge", n)

    passes.process_pending(now=T0)

    assert statuses("payments") == [Status.PENDING] * 2
    assert statuses("edge") == [Status.SENT] * 2
    assert destinations["payments"].requests == []
    assert not NotificationAttempt.objects.filter(event__destination="payments").exists()

    assert resume_destination("payments", Actor("bob", "ui"), now=T0 + MINUTE)
    passes.process_pending(now=T0 + MINUTE)
    assert statuses("payments") == [Status.SENT] * 2
    audit = ConfigurationAction.objects.order_by("id").values_list("target_kind", "target", "action", "actor", "source")
    assert list(audit) == [
        ("destination", "payments", "pause", "alice", "api"), ("destination", "payments", "resume", "bob", "ui"),
    ]


def test_a_disabled_destinations_events_are_held_spending_no_retries(destinations):
    waiting = [alert("payments", n) for n in range(2)]
    failed = alert("payments", 2)
    NotificationEvent.objects.filter(id=failed.id).update(status=Status.FAILED, retry_count=2, next_retry_at=T0)
    Destination.objects.filter(name="payments").update(enabled=False)
    alert("edge", 0)

    passes.process_pending(now=T0 + MINUTE)

    assert destinations["payments"].requests == []
    assert [NotificationEvent.objects.get(id=event.id).status for event in waiting] == [Status.PENDING] * 2
    failed = NotificationEvent.objects.get(id=failed.id)
    assert (failed.status, failed.retry_count, failed.attempt_count) == (Status.FAILED, 2, 0)
    assert statuses("edge") == [Status.SENT]

    Destination.objects.filter(name="payments").update(enabled=True)
    passes.process_pending(now=T0 + 2 * MINUTE)
    assert statuses("payments") == [Status.SENT] * 3


def test_a_stored_destination_that_cannot_deliver_dead_letters_its_events_saying_why(destinations):
    Destination.objects.create(name="half-done", channel="Webhook", sealed_secrets=sealing.seal({"secret": "s3"}))
    event = alert("half-done", 0)

    passes.process_pending(now=T0)

    event = NotificationEvent.objects.get(id=event.id)
    assert (event.status, event.last_error) == (Status.DEAD, "destination half-done is not configured: set url")


def test_an_unconfigured_environment_destination_keeps_todays_error(db):
    event, _ = create_event(type="RenewalFailure", channel="Webhook", recipient="ops", message="renewal failed")

    passes.process_pending(now=T0)

    event = NotificationEvent.objects.get(id=event.id)
    assert (event.status, event.last_error) == (
        Status.DEAD, "Webhook channel is not configured: set CERTCTL_WEBHOOK_URL"
    )


def test_a_pass_reads_the_destinations_once_however_many_events_name_them(destinations):
    for n in range(4):
        alert("payments", n)
        alert("edge", n)
    # Redaction reads the stored secrets once per configuration version, not per pass: done here beforehand.
    refresh_stored_secrets()

    with CaptureQueriesContext(connection) as queries:
        passes.process_pending(now=T0)

    # The full rows (with their sealed secrets) are read once; the breaker only asks which ones are disabled.
    reads = [query["sql"] for query in queries if '"notification_destinations"."sealed_secrets"' in query["sql"]]
    assert len(reads) == 1
    assert statuses("payments") == statuses("edge") == [Status.SENT] * 4


@pytest.mark.parametrize("change", [pause_destination, resume_destination])
def test_pausing_or_resuming_an_unknown_or_removed_destination_is_refused(destinations, change):
    Destination.objects.filter(name="edge").update(deleted_at=T0)

    for name in ("nowhere", "edge"):
        with pytest.raises(DestinationNotFound) as refused:
            change(name, OPERATOR, now=T0)
        assert refused.value.message == f"no destination {name!r}; GET /api/v1/destinations lists them"
    assert not ConfigurationAction.objects.exists()


def test_the_listing_shows_every_live_destination_environment_ones_first(destinations):
    Destination.objects.create(name="aaa-unfinished", channel="Slack")
    pause_destination("edge", OPERATOR, now=T0)
    destinations["payments"].reply_with(Reply(status=503, body="busy"))
    alert("payments", 0)
    alert("edge", 0)
    with time_machine.travel(T0, tick=False):
        passes.process_pending(now=T0)

    with time_machine.travel(T0 + MINUTE, tick=False):
        listing = {row["name"]: row for row in destination_states()}

    assert list(listing) == ["Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie", "aaa-unfinished", "edge",
                             "payments"]
    assert (listing["Webhook"]["configured"], listing["Webhook"]["problem"]) == (
        False, "Webhook channel is not configured: set CERTCTL_WEBHOOK_URL"
    )
    assert listing["aaa-unfinished"]["problem"] == "destination aaa-unfinished is not configured: set webhook_url"
    edge = listing["edge"]
    assert (edge["state"], edge["paused_at"], edge["paused_by"], edge["configured"]) == ("paused", T0, "alice", True)
    payments = listing["payments"]
    assert (payments["state"], payments["last_success_at"], payments["attempts_24h"], payments["failures_24h"]) == (
        "closed", None, 1, 1
    )
    assert payments["last_error"] == "Webhook receiver answered HTTP 503: busy"
    assert payments["last_failure_at"] is not None


BEFORE = [("notifications", "0011_destinations_and_routes")]
AFTER = [("notifications", "0012_destination_states")]


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_each_channels_state_and_pauses_to_its_environment_destination():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        old.get_model("notifications", "ChannelState").objects.create(
            channel="Slack", consecutive_failures=6, failing_events=["a", "b", "c"], opened_at=T0,
            next_probe_at=T0 + MINUTE, window_started_at=T0, window_failures=6,
        )
        old.get_model("notifications", "ChannelState").objects.create(
            channel="Webhook", paused_at=T0, paused_by="alice"
        )
        actions = old.get_model("notifications", "ChannelAction").objects
        actions.create(channel="Webhook", action="pause", actor="alice", source="cli", created_at=T0)
        actions.create(channel="Email", action="resume", actor="bob", source="ui", created_at=T0 - MINUTE)
        old.get_model("notifications", "DeliveryTotal").objects.create(
            channel="Teams", outcome="success", attempts=7, duration_buckets=[7] * 10
        )
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new = executor.loader.project_state(AFTER).apps
        states = new.get_model("notifications", "DestinationState").objects.order_by("destination")
        assert [
            (
                s.destination_id, s.consecutive_failures, s.failing_events, s.opened_at, s.next_probe_at,
                s.window_failures, s.paused_at, s.paused_by,
            )
            for s in states
        ] == [
            ("Slack", 6, ["a", "b", "c"], T0, T0 + MINUTE, 6, None, ""),
            ("Webhook", 0, [], None, None, 0, T0, "alice"),
        ]
        audit = new.get_model("notifications", "ConfigurationAction").objects.order_by("created_at")
        assert [(a.target_kind, a.target, a.action, a.actor, a.source, a.created_at) for a in audit] == [
            ("destination", "Email", "resume", "bob", "ui", T0 - MINUTE),
            ("destination", "Webhook", "pause", "alice", "cli", T0),
        ]
        totals = new.get_model("notifications", "DeliveryTotal").objects
        assert list(totals.values_list("destination", "channel", "attempts")) == [("Teams", "Teams", 7)]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
