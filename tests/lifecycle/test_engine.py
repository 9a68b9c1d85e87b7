"""The delivery engine's own promises: a hanging receiver holds only its share of the slots, outcomes are
written per chunk in two statements, and both ways of applying them agree."""
import asyncio
import itertools
import logging
import threading
import time
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext

from notifications.engine import breaker, claims, dispatch, passes, recording
from notifications.engine.backoff import RetryPolicy
from notifications.engine.recording import record_results
from notifications.engine.report import PassReport
from notifications.engine.sender import Delivery
from notifications.models import LastPass, NotificationAttempt, NotificationEvent, Status
from notifications.notifiers import DeliveryResult, Notifier
from notifications.notifiers.webhook import WebhookNotifier
from tests.deliveries import InstantClock, destination_state
from tests.lifecycle.conftest import T0, reload
from tests.receivers import Receiver, Reply


@pytest.fixture
def slow_receiver():
    server = Receiver().start()
    yield server
    server.stop()


def make_pending(channel, count):
    NotificationEvent.objects.bulk_create(
        NotificationEvent(type="ExpirationWarning", channel=channel, recipient="#pki", message=f"{channel} {n}")
        for n in range(count)
    )


@pytest.mark.django_db
def test_a_hanging_receiver_holds_only_its_share_while_another_is_served_at_once(settings, webhook, slow_receiver):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 8
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 4
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(seconds=2)
    settings.CERTCTL_SLACK_WEBHOOK_URL = slow_receiver.url + "/services/T0/B0/slacktoken"
    slow_receiver.reply_with(Reply(delay=4))
    make_pending("Slack", 8)  # older, so claimed first: without the per-destination cap they would take every slot
    make_pending("Webhook", 40)

    report = passes.process_pending()

    assert report.outcomes == {"sent": 40, "failed": 8}
    slow_attempts = NotificationAttempt.objects.filter(event__channel="Slack")
    first_slow_give_up = min(a.started_at.timestamp() + a.duration_ms / 1000 for a in slow_attempts)
    assert all("no answer within the read timeout" in a.error for a in slow_attempts)
    assert len(webhook.requests) == 40
    # Every fast delivery reached its receiver before the first hanging one was given up.
    assert max(r.received_at for r in webhook.requests) < first_slow_give_up
    assert len(slow_receiver.requests) == 8


def claimed_deliveries(count, result):
    make_pending("Webhook", count)
    events = claims.claim_due_events("pending", now=T0)
    return [Delivery(event, result, T0, 12, T0 + timedelta(seconds=1)) for event in events]


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(("breaker_history", "breaker_writes"), [
    ("none", []),
    ("closed after an outage, a success since", []),
    # The time of the last success is refreshed at most every tenth of CERTCTL_CHANNEL_BREAKER_WINDOW.
    ("closed after an outage", ["UPDATE"]),
])
def test_a_chunk_of_outcomes_is_one_update_and_one_insert(breaker_history, breaker_writes):
    if breaker_history != "none":
        last_success = T0 if "success since" in breaker_history else None
        destination_state("Webhook", opened_at=None, consecutive_failures=0, last_success_at=last_success)
    deliveries = claimed_deliveries(100, DeliveryResult.success(http_status=200))

    with CaptureQueriesContext(connection) as queries:
        statuses = record_results(deliveries)

    assert statuses == [Status.SENT] * 100
    writes = [q["sql"].split()[0] for q in queries.captured_queries if q["sql"].split()[0] in ("UPDATE", "INSERT")]
    assert writes == ["UPDATE", *breaker_writes, "INSERT"]
    assert NotificationEvent.objects.filter(status=Status.SENT, attempt_count=1, claim_token=None).count() == 100
    assert NotificationAttempt.objects.filter(number=1, resulting_status=Status.SENT).count() == 100


@pytest.mark.django_db
@pytest.mark.parametrize("apply", ["vendor", "statement per event"])
def test_outcomes_apply_only_under_the_claim_and_number_attempts_after_the_latest(monkeypatch, apply):
    if apply == "statement per event":
        monkeypatch.setattr(recording, "_apply_postgresql", recording._apply_each)
    failed, lost, sent = claimed_deliveries(
        3, DeliveryResult.transient("Webhook receiver answered HTTP 503", http_status=503)
    )
    sent = Delivery(sent.event, DeliveryResult.success(http_status=200), sent.started_at, 5, sent.finished_at)
    NotificationEvent.objects.filter(id=failed.event.id).update(attempt_count=4, retry_count=1)
    failed = Delivery(reload(failed.event), failed.result, failed.started_at, failed.duration_ms, failed.finished_at)
    NotificationEvent.objects.filter(id=lost.event.id).update(claim_token="another-worker", attempt_count=2)

    statuses = record_results([failed, lost, sent])

    assert statuses == [Status.FAILED, None, Status.SENT]
    rows = {e.id: e for e in NotificationEvent.objects.all()}
    assert (rows[failed.event.id].retry_count, rows[failed.event.id].attempt_count) == (2, 5)
    assert rows[failed.event.id].next_retry_at == failed.finished_at + timedelta(minutes=2)
    assert (rows[lost.event.id].status, rows[lost.event.id].claim_token, rows[lost.event.id].attempt_count) == (
        Status.PENDING, "another-worker", 3,
    )
    assert (rows[sent.event.id].status, rows[sent.event.id].sent_at, rows[sent.event.id].claim_token) == (
        Status.SENT, sent.finished_at, None,
    )
    applied = [rows[failed.event.id], rows[sent.event.id]]
    assert [(e.last_error, e.claimed_until, e.claim_token, e.updated_at, e.last_attempt_at) for e in applied] == [
        ("Webhook receiver answered HTTP 503", None, None, failed.finished_at, failed.finished_at),
        (None, None, None, sent.finished_at, sent.finished_at),
    ]
    assert (rows[failed.event.id].sent_at, rows[sent.event.id].next_retry_at, rows[lost.event.id].last_attempt_at) == (
        None, None, None,
    )
    attempts = {(a.event_id, a.number): a.resulting_status for a in NotificationAttempt.objects.all()}
    assert attempts == {(failed.event.id, 5): Status.FAILED, (lost.event.id, 3): None, (sent.event.id, 1): Status.SENT}
    recorded = {
        a.event_id: (a.started_at, a.duration_ms, a.outcome, a.error, a.http_status)
        for a in NotificationAttempt.objects.all()
    }
    assert recorded == {
        failed.event.id: (T0, 12, "transient_failure", "Webhook receiver answered HTTP 503", 503),
        lost.event.id: (T0, 12, "transient_failure", "Webhook receiver answered HTTP 503", 503),
        sent.event.id: (T0, 5, "success", "", 200),
    }


def test_a_database_blip_while_recording_is_retried_and_nothing_is_lost(transactional_db, monkeypatch, caplog):
    [sent] = claimed_deliveries(1, DeliveryResult.success(http_status=200))
    real_apply, failures = recording._apply, []

    def flaky_apply(*args):
        if len(failures) < 2:
            failures.append(1)
            raise DatabaseError("server closed the connection unexpectedly")
        return real_apply(*args)

    monkeypatch.setattr(recording, "_apply", flaky_apply)
    monkeypatch.setattr(recording.time, "sleep", lambda seconds: None)

    assert record_results([sent]) == [Status.SENT]
    assert reload(sent.event).status == Status.SENT
    assert "retrying" in caplog.text


ATTEMPT_FIELDS = ("event_id", "channel", "attempt", "outcome", "duration_ms", "status", "http_status")


@pytest.mark.django_db
def test_every_attempt_is_logged_with_its_number_outcome_and_what_became_of_its_event(caplog):
    failed, lost, sent = claimed_deliveries(
        3, DeliveryResult.transient("Webhook receiver answered HTTP 503", http_status=503)
    )
    sent = Delivery(sent.event, DeliveryResult.success(http_status=200), sent.started_at, 5, sent.finished_at)
    NotificationEvent.objects.filter(id=lost.event.id).update(claim_token="another-worker", attempt_count=2)

    with caplog.at_level(logging.INFO, logger="notifications.delivery"):
        record_results([failed, lost, sent])

    lines = [(r.levelname, r.getMessage(), {name: getattr(r, name) for name in ATTEMPT_FIELDS}) for r in caplog.records]
    assert lines == [
        ("WARNING", f"attempt 1 of event {failed.event.id} via Webhook: transient_failure in 12ms, now failed: "
                    "Webhook receiver answered HTTP 503",
         dict(event_id=failed.event.id, channel="Webhook", attempt=1, outcome="transient_failure", duration_ms=12,
              status="failed", http_status=503)),
        ("WARNING", f"attempt 3 of event {lost.event.id} via Webhook: transient_failure in 12ms, not applied: "
                    "the lease was lost (requeued or expired meanwhile)",
         dict(event_id=lost.event.id, channel="Webhook", attempt=3, outcome="transient_failure", duration_ms=12,
              status=None, http_status=503)),
        ("INFO", f"attempt 1 of event {sent.event.id} via Webhook: success in 5ms, now sent",
         dict(event_id=sent.event.id, channel="Webhook", attempt=1, outcome="success", duration_ms=5, status="sent",
              http_status=200)),
    ]


@pytest.mark.django_db
def test_every_claim_is_logged_at_debug_with_its_pass_and_lease_end(make_event, caplog):
    event = make_event()

    with caplog.at_level(logging.DEBUG, logger="notifications.delivery"):
        claims.claim_due_events("pending", now=T0, lease=timedelta(minutes=2))

    assert [(r.levelname, r.getMessage(), r.event_id, r.channel, getattr(r, "pass"))
            for r in caplog.records if r.name == "notifications.delivery"] == [
        ("DEBUG", f"claimed event {event.id} for the pending pass until 2026-11-28 12:02:00+00:00",
         event.id, "Webhook", "pending"),
    ]


def test_recording_through_an_outage_backs_off_then_gives_up_after_30_seconds_leaving_the_claim(
    transactional_db, monkeypatch, caplog
):
    [sent] = claimed_deliveries(1, DeliveryResult.success(http_status=200))

    def database_away(*args):
        raise DatabaseError("could not connect to server")

    monkeypatch.setattr(recording, "_apply", database_away)
    clock = InstantClock()
    monkeypatch.setattr(recording, "time", clock)

    with pytest.raises(DatabaseError):
        record_results([sent])

    assert clock.sleeps == [0.5, 1, 2, 4, 5, 5, 5, 5]  # the next pause would end past the 30 s
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "notifications.delivery"]
    assert messages[0] == (
        "WARNING", "recording 1 delivery results failed (could not connect to server); retrying in 0.5s"
    )
    assert messages[-1] == (
        "ERROR",
        "could not record 1 delivery results (DatabaseError: could not connect to server); "
        "their events will be delivered again after their lease",
    )
    assert len(messages) == 9
    # Nothing recorded: the event keeps its claim and is delivered again after the lease.
    event = reload(sent.event)
    assert (event.status, event.claim_token, event.attempts.count()) == (Status.PENDING, sent.event.claim_token, 0)


@pytest.mark.django_db
def test_a_recording_error_inside_the_callers_transaction_is_raised_at_once(monkeypatch):
    [sent] = claimed_deliveries(1, DeliveryResult.success(http_status=200))

    def database_error(*args):
        raise DatabaseError("deadlock detected")

    monkeypatch.setattr(recording, "_apply", database_error)
    clock = InstantClock()
    monkeypatch.setattr(recording, "time", clock)

    # The caller's transaction is broken by the error: retrying inside it cannot succeed.
    with pytest.raises(DatabaseError):
        record_results([sent])
    assert clock.sleeps == []


def claims_fail(monkeypatch):
    def database_away(now):
        raise DatabaseError("could not connect to server")

    monkeypatch.setattr(breaker, "hold_and_probes", database_away)


def test_a_pass_keeps_trying_to_claim_every_second_through_30_seconds_of_database_outage_then_fails(
    transactional_db, monkeypatch, caplog
):
    claims_fail(monkeypatch)
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    with pytest.raises(DatabaseError):
        passes.process_pending(now=T0)

    warnings = [r.getMessage() for r in caplog.records if r.name == "notifications.delivery"]
    # Claims at 0, 1, ..., 30 s of the outage fail and are retried; the one at 31 s gives up.
    retried = "claiming due events failed (DatabaseError: could not connect to server); trying again in 1s"
    assert warnings == [retried] * 31
    assert clock.now == 1031.0


@pytest.mark.django_db
def test_a_claim_error_inside_the_callers_transaction_fails_the_pass_at_once(monkeypatch, caplog):
    claims_fail(monkeypatch)
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    with pytest.raises(DatabaseError):
        passes.process_pending(now=T0)

    assert (clock.sleeps, [r for r in caplog.records if r.name == "notifications.delivery"]) == ([], [])


@pytest.mark.django_db
def test_no_more_than_the_per_destination_cap_of_sends_reach_one_receiver_at_once(settings, webhook):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 8
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 2
    webhook.reply_with(Reply(delay=1.0))
    make_pending("Webhook", 4)

    assert passes.process_pending(now=T0).outcomes == {"sent": 4}

    arrivals = sorted(request.received_at for request in webhook.requests)
    assert arrivals[1] - arrivals[0] < 0.8  # two at once ...
    assert arrivals[2] - arrivals[0] > 0.9  # ... and the third only once one of them was answered


@pytest.mark.django_db
def test_each_destination_keeps_its_own_connections_for_the_whole_pass(settings, webhook, slow_receiver):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 2
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 1
    settings.CERTCTL_SLACK_WEBHOOK_URL = slow_receiver.url + "/services/T0/B0/slacktoken"
    webhook.reply_with(Reply(delay=0.05))
    slow_receiver.reply_with(Reply(delay=0.05))
    make_pending("Webhook", 16)
    make_pending("Slack", 16)

    assert passes.process_pending(now=T0).outcomes == {"sent": 32}

    # One send at a time to each receiver: every send of the pass reuses the destination's keep-alive connection.
    for receiver in (webhook, slow_receiver):
        assert len(receiver.requests) == 16
        assert len({request.client_port for request in receiver.requests}) == 1


class ThreadRecordingNotifier(Notifier):
    """Answers success after `hold` seconds, noting the thread each send ran on and how many ran at once."""

    def __init__(self, blocking: bool, hold: float):
        self.blocking = blocking
        self.hold = hold
        self.threads: list[threading.Thread] = []
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    @property
    def destination(self) -> str:
        return "smtp://mail.example.com:25" if self.blocking else "https://hooks.example.com"

    def _hold(self) -> DeliveryResult:
        with self.lock:
            self.threads.append(threading.current_thread())
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(self.hold)
        with self.lock:
            self.running -= 1
        return DeliveryResult.success()

    async def send(self, event, client):
        if self.blocking:
            return await asyncio.get_running_loop().run_in_executor(None, self._hold)
        self.threads.append(threading.current_thread())
        return DeliveryResult.success()


@pytest.mark.django_db
def test_blocking_sends_run_on_named_threads_up_to_the_per_destination_cap_and_others_on_the_loop(
    settings, monkeypatch
):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 16
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 8
    blocking = ThreadRecordingNotifier(blocking=True, hold=0.3)
    loop_only = ThreadRecordingNotifier(blocking=False, hold=0)
    monkeypatch.setattr(
        passes, "build_destination_notifier", lambda dest: blocking if dest.channel == "Email" else loop_only
    )
    make_pending("Email", 8)
    make_pending("Webhook", 2)

    assert passes.process_pending(now=T0).outcomes == {"sent": 10}

    # Named for thread dumps and py-spy; the loop's thread never keeps the process from exiting.
    assert blocking.most_at_once == 8
    assert {thread.name.rsplit("_", 1)[0] for thread in blocking.threads} == {"deliver-blocking"}
    assert [(thread.name, thread.daemon) for thread in loop_only.threads] == [("deliver-loop", True)] * 2


@pytest.mark.django_db
def test_a_pass_counts_the_results_whose_lease_was_lost_while_they_were_sent(webhook, monkeypatch):
    make_pending("Webhook", 2)
    apply_outcomes = recording._apply

    def taken_over_meanwhile(attempts):
        NotificationEvent.objects.update(claim_token="another-worker")
        return apply_outcomes(attempts)

    monkeypatch.setattr(recording, "_apply", taken_over_meanwhile)

    report = passes.process_pending(now=T0)

    assert (report.claimed, report.outcomes) == (2, {"lease_lost": 2})
    assert list(NotificationAttempt.objects.values_list("started_at", "resulting_status")) == [(T0, None), (T0, None)]


@pytest.mark.django_db
def test_a_pass_waiting_for_a_slow_receiver_neither_spins_nor_keeps_querying(webhook, monkeypatch):
    webhook.reply_with(Reply(delay=3.0))
    make_pending("Webhook", 1)
    claim_rounds = []
    hold_and_probes = breaker.hold_and_probes
    monkeypatch.setattr(breaker, "hold_and_probes", lambda now: claim_rounds.append(now) or hold_and_probes(now))
    cpu_before = time.process_time()

    assert passes.process_pending(now=T0).outcomes == {"sent": 1}

    # While the send is in flight the pass looks for new events every CLAIM_AGAIN_AFTER (0.1 s), about 30 times,
    # and otherwise waits: a pass that spun would burn all 3 s of the wait in CPU; waiting costs a fraction of
    # that even on a slow, shared machine.
    assert len(claim_rounds) <= 60
    assert time.process_time() - cpu_before < 1.5


@pytest.mark.django_db
def test_deliver_batch_waiting_for_a_slow_receiver_wakes_only_to_record(webhook, monkeypatch):
    webhook.reply_with(Reply(delay=1.0))
    make_pending("Webhook", 1)
    claimed = claims.claim_due_events("pending", now=T0)
    clock_reads = []

    def monotonic():
        clock_reads.append(None)
        return time.monotonic()

    monkeypatch.setattr(passes, "time", SimpleNamespace(monotonic=monotonic, sleep=time.sleep))

    assert passes.deliver_batch(claimed, now=T0) == [Status.SENT]

    # It has nothing to claim, so it wakes every RECORD_EVERY (0.25 s): a few dozen clock reads, where a loop
    # that did not wait would make hundreds of thousands.
    assert len(clock_reads) < 200


class SharedGaugeNotifier(Notifier):
    """Answers success after the next of `holds` seconds (0.2 s), counting in `gauge` the sends of all such notifiers
    in flight at once."""

    def __init__(self, destination: str, gauge: Counter[str], *holds: float):
        self._destination = destination
        self.gauge = gauge
        self.holds = itertools.cycle(holds or (0.2,))

    @property
    def destination(self) -> str:
        return self._destination

    async def send(self, event, client):
        self.gauge["now"] += 1
        self.gauge["most"] = max(self.gauge["most"], self.gauge["now"])
        await asyncio.sleep(next(self.holds))
        self.gauge["now"] -= 1
        return DeliveryResult.success()


@pytest.mark.django_db
def test_never_more_sends_at_once_than_the_concurrency_over_all_destinations(settings, monkeypatch):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 3
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 3
    gauge: Counter[str] = Counter()
    notifiers = {
        "Webhook": SharedGaugeNotifier("https://hooks.example.com", gauge),
        "Slack": SharedGaugeNotifier("https://hooks.slack.com", gauge),
    }
    monkeypatch.setattr(passes, "build_destination_notifier", lambda dest: notifiers[dest.name])
    make_pending("Webhook", 6)
    make_pending("Slack", 6)

    assert passes.process_pending(now=T0).outcomes == {"sent": 12}

    assert gauge["most"] == 3


@pytest.mark.django_db
def test_a_pass_records_its_results_in_chunks_every_quarter_second_not_as_each_arrives(settings, monkeypatch):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 16
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 16
    # Sends of different lengths: they finish a few at a time, all through the pass.
    staggered = SharedGaugeNotifier("https://hooks.example.com", Counter(), 0.02, 0.05, 0.08, 0.03, 0.07, 0.04, 0.06)
    monkeypatch.setattr(passes, "build_destination_notifier", lambda dest: staggered)
    make_pending("Webhook", 300)
    chunks = []
    record = recording.record_results
    def record_in_chunks(deliveries, policy):
        chunks.append(len(deliveries))
        return record(deliveries, policy)

    monkeypatch.setattr(passes, "record_results", record_in_chunks)
    started = time.monotonic()

    assert passes.process_pending(now=T0).outcomes == {"sent": 300}

    # Recording each handful as it arrived would be dozens of chunks.
    elapsed = time.monotonic() - started
    assert sum(chunks) == 300
    assert len(chunks) <= elapsed / passes.RECORD_EVERY + 3


@pytest.mark.django_db
def test_a_pass_never_holds_more_than_two_rounds_of_its_send_slots(settings, webhook, monkeypatch):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 2
    settings.CERTCTL_NOTIFICATION_DESTINATION_CONCURRENCY = 1  # one receiver: one send at a time, the rest wait
    webhook.reply_with(Reply(delay=0.02))
    make_pending("Webhook", 12)
    limits = []
    claim = claims.claim_due_events

    def recorded_claim(*args, **kwargs):
        limits.append(kwargs["limit"])
        return claim(*args, **kwargs)

    monkeypatch.setattr(claims, "claim_due_events", recorded_claim)

    assert passes.process_pending(now=T0).outcomes == {"sent": 12}

    assert limits[0] == 4
    assert max(limits) == 4


@pytest.mark.django_db(transaction=True)
def test_an_event_created_while_a_pass_waits_on_a_slow_receiver_is_sent_without_waiting_for_it(settings, webhook):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 4
    webhook.reply_with(Reply(delay=3.0), Reply())
    make_pending("Webhook", 1)
    later = threading.Timer(0.5, make_pending, ("Webhook", 1))
    later.start()

    assert passes.process_pending().outcomes == {"sent": 2}

    later.join()
    slow, created_meanwhile = webhook.requests
    assert created_meanwhile.received_at < slow.received_at + 2.0  # the slow one answered at + 3 s


@pytest.mark.django_db
def test_a_notifier_that_raises_costs_its_event_one_attempt_with_the_secrets_taken_out_of_the_error(
    settings, webhook, make_event, monkeypatch, caplog
):
    settings.CERTCTL_WEBHOOK_SECRET = "whsec-0123456789abcdef"
    event = make_event()

    async def broken(self, event, client):
        raise RuntimeError("cannot sign with whsec-0123456789abcdef")

    monkeypatch.setattr(WebhookNotifier, "send", broken)

    assert passes.process_pending(now=T0).outcomes == {"failed": 1}

    assert reload(event).last_error == (
        "internal error in the Webhook notifier: RuntimeError: cannot sign with [redacted]"
    )
    [raised] = [r for r in caplog.records if r.getMessage() == "notifier raised"]
    assert (raised.levelname, raised.event_id, raised.channel, raised.exc_info[0]) == (
        "ERROR", event.id, "Webhook", RuntimeError,
    )


@pytest.fixture
def bound_of_a_third_of_a_second(settings):
    """A send may take its connect and read timeouts together: 0.3 s here."""
    settings.CERTCTL_NOTIFICATION_CONNECT_TIMEOUT = timedelta(seconds=0.1)
    settings.CERTCTL_NOTIFICATION_READ_TIMEOUT = timedelta(seconds=0.2)


@pytest.mark.django_db
def test_a_send_still_unanswered_after_its_timeouts_is_cut_short_as_a_transient_failure(
    bound_of_a_third_of_a_second, webhook, make_event, monkeypatch
):
    event = make_event()

    async def trickling(self, event, client):
        await asyncio.sleep(3)  # e.g. a receiver sending a byte now and then: no single read times out
        return DeliveryResult.success(http_status=200)

    monkeypatch.setattr(WebhookNotifier, "send", trickling)

    assert passes.process_pending(now=T0).outcomes == {"failed": 1}

    assert reload(event).last_error == (
        "Webhook: no complete answer within 0.3s "
        "(CERTCTL_NOTIFICATION_CONNECT_TIMEOUT + CERTCTL_NOTIFICATION_READ_TIMEOUT); will retry"
    )
    assert 300 <= event.attempts.get().duration_ms < 2000


@pytest.mark.django_db
def test_a_blocking_send_is_not_cut_short_since_its_thread_would_go_on(
    bound_of_a_third_of_a_second, webhook, make_event, monkeypatch
):
    event = make_event()

    async def slow_but_delivered(self, event, client):
        await asyncio.sleep(0.6)  # SMTP in a thread: its own timeouts bound it, and it may still deliver
        return DeliveryResult.success()

    monkeypatch.setattr(WebhookNotifier, "blocking", True)
    monkeypatch.setattr(WebhookNotifier, "send", slow_but_delivered)

    assert passes.process_pending(now=T0).outcomes == {"sent": 1}
    assert reload(event).status == Status.SENT


@pytest.mark.django_db
def test_deliver_batch_starts_every_event_within_its_default_start_window(settings, webhook):
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 1
    make_pending("Webhook", 3)
    claimed = claims.claim_due_events("pending", now=T0)

    assert passes.deliver_batch(claimed, now=T0) == [Status.SENT] * 3
    assert len(webhook.requests) == 3


@pytest.mark.django_db
def test_a_pass_or_claim_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="^sideways$"):
        passes.run_pass("sideways")
    with pytest.raises(ValueError, match="^sideways$"):
        claims.claim_due_events("sideways", now=T0)


@pytest.mark.django_db
def test_a_send_cancelled_under_the_engine_still_answers_with_a_transient_failure(webhook, make_event, monkeypatch):
    event = make_event()

    async def cancelled(self, event, client):
        raise asyncio.CancelledError

    monkeypatch.setattr(WebhookNotifier, "send", cancelled)

    assert passes.process_pending(now=T0).outcomes == {"failed": 1}
    assert reload(event).last_error == "delivery interrupted (CancelledError); will retry"


@pytest.mark.django_db
def test_deliver_batch_applies_the_retry_policy_it_is_given(failing_webhook):
    make_pending("Webhook", 1)
    claimed = claims.claim_due_events("pending", now=T0)
    one_attempt = RetryPolicy(base=timedelta(minutes=1), cap=timedelta(hours=1), max_attempts=1)

    assert passes.deliver_batch(claimed, now=T0, policy=one_attempt) == [Status.DEAD]


@pytest.mark.django_db
def test_a_claim_returns_its_events_oldest_first_whatever_order_the_table_holds_them_in(make_event):
    events = [make_event(message=f"cert {n}") for n in range(4)]
    for age, event in enumerate(events, start=1):  # the first one created is the newest
        NotificationEvent.objects.filter(id=event.id).update(created_at=T0 - age * timedelta(minutes=1))

    claimed = claims.claim_due_events("pending", now=T0)

    assert [event.id for event in claimed] == [event.id for event in reversed(events)]


@pytest.mark.django_db
def test_a_pass_leaves_its_figures_for_the_metrics_and_says_nothing_when_it_found_nothing(webhook, caplog):
    make_pending("Webhook", 2)

    with caplog.at_level(logging.INFO, logger="notifications.delivery"):
        report = passes.process_pending(now=T0)
        caplog.clear()
        empty = passes.retry_sweep(now=T0 + timedelta(seconds=1))

    assert (report.kind, report.claimed, report.outcomes, 0 < report.duration_s < 10) == (
        "pending", 2, {"sent": 2}, True,
    )
    assert (empty.kind, empty.claimed, empty.outcomes, 0 < empty.duration_s < 10) == ("retry", 0, {}, True)
    figures = {p.kind: (p.finished_at, p.claimed, p.duration_seconds) for p in LastPass.objects.all()}
    assert figures == {"pending": (T0, 2, report.duration_s), "retry": (T0 + timedelta(seconds=1), 0, empty.duration_s)}
    assert [r for r in caplog.records if r.name == "notifications.delivery"] == []


def test_a_pass_report_gives_its_duration_in_milliseconds():
    report = PassReport(kind="retry", claimed=3, outcomes={"sent": 2, "failed": 1}, duration_s=1.23456)
    assert report.as_dict() == {
        "kind": "retry", "claimed": 3, "outcomes": {"sent": 2, "failed": 1}, "duration_s": 1.235,
    }


@pytest.mark.django_db
def test_a_pass_whose_retry_sweep_wake_up_fails_still_reports_and_says_why(webhook, monkeypatch, caplog):
    make_pending("Webhook", 1)

    def database_away():
        raise DatabaseError("could not connect to server")

    monkeypatch.setattr(dispatch, "wake_retry_sweep", database_away)

    assert passes.process_pending(now=T0).outcomes == {"sent": 1}
    assert "could not bring the retry sweep forward (could not connect to server); retries wait for its next tick" in [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING"
    ]


def test_a_pass_that_cannot_look_for_retries_to_wait_for_ends(transactional_db, webhook, monkeypatch):
    make_pending("Webhook", 1)

    def database_away():
        raise DatabaseError("could not connect to server")

    monkeypatch.setattr(breaker, "paused_destinations", database_away)
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    assert passes.process_pending().outcomes == {"sent": 1}
