"""The per-channel circuit breaker and the maintenance pause, with a controlled clock."""
import itertools
import logging
import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Min

from notifications.actors import Actor
from notifications.engine import breaker, claims, passes, recording, sender
from notifications.errors import UnknownChannel
from notifications.models import (
    ConfigurationAction,
    Destination,
    DestinationState,
    NotificationAttempt,
    NotificationEvent,
    Status,
)
from notifications.notifiers import DeliveryResult
from notifications.operations.channels import pause_channel, resume_channel
from notifications.operations.events import create_event
from notifications.queries.channels import channel_states
from tests.deliveries import destination_state, state_of
from tests.lifecycle.conftest import MINUTE, T0
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.django_db

STEP = timedelta(seconds=20)


@pytest.fixture(autouse=True)
def _breaker_defaults(settings):
    settings.CERTCTL_CHANNEL_BREAKER_FAILURES = 5
    settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS = 3
    # A fifth of the default window: the flaky receivers below find the rule that much harder to pass.
    settings.CERTCTL_CHANNEL_BREAKER_WINDOW = MINUTE
    settings.CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS = 20
    settings.CERTCTL_CHANNEL_BREAKER_FAILURE_RATE = 0.8
    settings.CERTCTL_CHANNEL_BREAKER_PROBE = MINUTE


def create_at(moment, n):
    with time_machine.travel(moment, tick=False):
        event, _ = create_event(
            type="RenewalFailure", channel="Webhook", recipient="ops@example.com", message=f"renewal {n} failed"
        )
    return event


def state(channel="Webhook"):
    return state_of(channel)


@pytest.mark.postgres
def test_a_20_minute_outage_dead_letters_none_of_50_events_and_they_flow_once_it_ends(webhook):
    webhook.reply_with(Reply(status=503, body="upstream down"))
    outage_ends = T0 + 20 * MINUTE
    now, created = T0, []
    while now < outage_ends:
        if len(created) < 50:
            created.append(create_at(now, len(created)))  # one event comes due every 20 s
        passes.process_pending(now=now)
        assert not NotificationEvent.objects.filter(status=Status.DEAD).exists(), f"dead-lettered at {now}"
        now += STEP
    assert len(created) == 50
    assert state().state == "open"
    assert max(NotificationEvent.objects.values_list("retry_count", flat=True)) < 5
    probes_during_outage = NotificationAttempt.objects.filter(started_at__gt=T0 + 5 * MINUTE).count()
    assert probes_during_outage <= 16  # about one a minute, not one per event per backoff

    webhook.reply_with(Reply(status=200))
    while NotificationEvent.objects.exclude(status=Status.SENT).exists():
        assert now <= outage_ends + MINUTE + STEP, "not all sent within one probe interval plus one pass"
        passes.process_pending(now=now)
        now += STEP
    assert state().state == "closed"
    assert NotificationEvent.objects.filter(status=Status.SENT).count() == 50


def test_a_poison_event_still_goes_dead_after_its_own_attempts(failing_webhook):
    event = create_at(T0, 0)
    now = T0
    for _ in range(5):
        passes.process_pending(now=now)
        event.refresh_from_db()
        now = event.next_retry_at or now
    assert event.status == Status.DEAD
    assert event.retry_count == 5
    assert state().state == "closed"  # five failures, but of one event: not an outage


def test_permanent_failures_never_open_the_breaker(webhook):
    webhook.reply_with(Reply(status=400, body="bad payload"))
    for n in range(8):
        create_at(T0, n)
    passes.process_pending(now=T0)
    assert NotificationEvent.objects.filter(status=Status.DEAD).count() == 8
    assert state() is None or state().state == "closed"


@pytest.fixture
def slack():
    server = Receiver().start()
    yield server
    server.stop()


def test_an_open_channel_holds_its_events_and_lets_other_channels_through(failing_webhook, settings, slack):
    settings.CERTCTL_SLACK_WEBHOOK_URL = slack.url + "/services/T0/B0/slacktoken"
    for n in range(5):
        create_at(T0, n)
    passes.process_pending(now=T0)
    assert state().state == "open"
    held = create_at(T0 + STEP, 99)
    with time_machine.travel(T0 + STEP, tick=False):
        other, _ = create_event(type="RenewalFailure", channel="Slack", recipient="#pki", message="renewal failed")

    passes.process_pending(now=T0 + STEP)

    held.refresh_from_db()
    other.refresh_from_db()
    assert (held.status, held.attempt_count) == (Status.PENDING, 0)
    assert other.status == Status.SENT
    assert len(slack.requests) == 1
    # The failed ones wait for the probe instead of coming due on their own backoff.
    failed = NotificationEvent.objects.filter(status=Status.FAILED)
    assert set(failed.values_list("next_retry_at", flat=True)) == {T0 + MINUTE}


def test_a_failed_probe_costs_no_retry_and_a_successful_one_closes_the_breaker(failing_webhook):
    for n in range(5):
        create_at(T0, n)
    passes.process_pending(now=T0)
    retries_before = dict(NotificationEvent.objects.values_list("id", "retry_count"))

    report = passes.process_pending(now=T0 + MINUTE)
    assert report.claimed == 1  # one probe, however many are due
    assert dict(NotificationEvent.objects.values_list("id", "retry_count")) == retries_before
    assert state().next_probe_at == T0 + 2 * MINUTE
    assert passes.process_pending(now=T0 + MINUTE + STEP).claimed == 0  # no second probe within the interval

    failing_webhook.reply_with(Reply(status=200))
    report = passes.process_pending(now=T0 + 2 * MINUTE)
    assert report.claimed == 5
    assert report.outcomes == {"sent": 5}
    assert state().state == "closed"


def test_a_paused_channel_holds_its_events_without_probes_until_resumed(webhook):
    assert breaker.pause("Webhook", "alice", T0)
    assert not breaker.pause("Webhook", "bob", T0)  # already paused: the first pause stands
    event = create_at(T0, 0)

    assert passes.process_pending(now=T0 + 5 * MINUTE).claimed == 0
    event.refresh_from_db()
    assert (event.status, webhook.requests) == (Status.PENDING, [])
    assert (state().state, state().paused_by) == ("paused", "alice")

    assert breaker.resume("Webhook")
    assert not breaker.resume("Webhook")  # not paused any more
    assert (state().state, state().paused_at, state().paused_by) == ("closed", None, "")
    assert passes.process_pending(now=T0 + 5 * MINUTE).claimed == 1
    event.refresh_from_db()
    assert event.status == Status.SENT


def test_the_breaker_logs_once_when_it_opens_and_once_when_it_closes(failing_webhook, caplog):
    for n in range(5):
        create_at(T0, n)

    with caplog.at_level(logging.WARNING, logger="notifications.breaker"):
        passes.process_pending(now=T0)
        passes.process_pending(now=T0 + MINUTE)  # a failed probe: still open, nothing more to say
        failing_webhook.reply_with(Reply(status=200))
        passes.process_pending(now=T0 + 2 * MINUTE)

    assert [
        (r.levelname, r.getMessage(), r.destination) for r in caplog.records if r.name == "notifications.breaker"
    ] == [
        ("WARNING", "Webhook circuit breaker opened after 5 consecutive transient failures; its events wait, "
                    "one is tried every 0:01:00", "Webhook"),
        ("WARNING", "Webhook circuit breaker closed: a delivery succeeded; waiting events flow again", "Webhook"),
    ]


def test_the_probe_is_one_event_of_the_passs_own_kind_and_a_failed_pending_probe_stays_pending(failing_webhook):
    for n in range(5):
        create_at(T0, n)
    passes.process_pending(now=T0)
    waiting = create_at(T0 + STEP, 99)

    assert passes.process_pending(now=T0 + MINUTE).claimed == 1

    waiting.refresh_from_db()
    assert (waiting.status, waiting.retry_count, waiting.next_retry_at, waiting.attempt_count) == (
        Status.PENDING, 0, None, 1,
    )


def failure(event_id, channel="Webhook"):
    return breaker.Outcome(destination=channel, event_id=event_id, transient_failure=True, success=False)


def success(event_id, channel="Webhook"):
    return breaker.Outcome(destination=channel, event_id=event_id, transient_failure=False, success=True)


FIVE_FAILURES_OF_THREE_EVENTS = [failure(f"notif-{n % 3}") for n in range(5)]


def failed_event(next_retry_at, channel="Webhook", leased=False):
    event = create_at(T0, 0)
    lease = dict(claimed_until=T0 + 5 * MINUTE, claim_token="another-worker") if leased else {}
    NotificationEvent.objects.filter(id=event.id).update(
        channel=channel, status=Status.FAILED, retry_count=1, next_retry_at=next_retry_at, **lease
    )
    return event


def retry_times(*events):
    return [NotificationEvent.objects.get(id=event.id).next_retry_at for event in events]


def test_a_success_in_between_starts_the_count_of_consecutive_failures_again():
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS[:4], now=T0)
    breaker.record([success("notif-9")], now=T0)
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS[:4], now=T0)
    assert (state().state, state().consecutive_failures) == ("closed", 4)

    breaker.record([failure("notif-0")], now=T0 + STEP)
    # Changed rule: a success within the window says the receiver is flaky, not down.
    assert (state().state, state().consecutive_failures) == ("closed", 5)

    breaker.record([failure("notif-1")], now=T0 + MINUTE)
    assert (state().state, state().opened_at, state().next_probe_at) == ("open", T0 + MINUTE, T0 + 2 * MINUTE)


def opens_after(outcomes, now=T0):
    """Record the outcomes one at a time; how many it took to open the breaker, or None."""
    for count, outcome in enumerate(outcomes, start=1):
        breaker.record([outcome], now=now)
        if state().state == "open":
            return count
    return None


def test_a_channel_failing_every_attempt_opens_after_five_failures_over_three_events_as_before():
    assert opens_after([failure(f"notif-{n % 3}") for n in range(30)]) == 5


def test_a_channel_that_goes_down_opens_once_nothing_succeeded_within_the_window():
    breaker.record([success(f"notif-{n}") for n in range(500)], now=T0)  # healthy and never failed: nothing is written
    assert state() is None
    breaker.record([failure("notif-0"), success("notif-1")], now=T0)
    breaker.record([success(f"notif-{n}") for n in range(500)], now=T0 + 5 * MINUTE)  # a healthy spell
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0 + 5 * MINUTE + STEP)
    assert (state().state, state().consecutive_failures) == ("closed", 5)

    assert opens_after([failure("notif-5")], now=T0 + 6 * MINUTE - timedelta(microseconds=1)) is None
    assert opens_after([failure("notif-6")], now=T0 + 6 * MINUTE) == 1


def test_successes_on_a_healthy_channel_refresh_the_last_success_every_tenth_of_the_window():
    breaker.record([failure("notif-0"), success("notif-1")], now=T0 - 5 * MINUTE)  # the channel has a row

    for seconds, last_success in ((0, 0), (5, 0), (6, 0), (7, 7)):
        breaker.record([success("notif-2")], now=T0 + timedelta(seconds=seconds))
        assert state().last_success_at == T0 + timedelta(seconds=last_success)

    # Another worker's earlier results do not move it back, on a healthy channel or not.
    breaker.record([success("notif-3")], now=T0 - MINUTE)
    breaker.record([failure("notif-4"), success("notif-5")], now=T0 - MINUTE)
    assert state().last_success_at == T0 + timedelta(seconds=7)


def test_five_failures_of_two_events_do_not_open_it_however_many():
    # Twenty attempts within the window are more than two events' retries ever make; nineteen stay below the volume.
    assert opens_after([failure(f"notif-{n % 2}") for n in range(19)]) is None


def test_successes_count_towards_the_rate_only_while_the_window_holds_a_failure():
    breaker.record([failure("notif-0")], now=T0)
    breaker.record([success("notif-1")], now=T0 + 2 * MINUTE)

    assert (state().consecutive_failures, state().window_successes, state().last_success_at) == (0, 0, T0 + 2 * MINUTE)


def test_failures_after_a_success_open_it_once_the_success_has_left_the_window():
    breaker.record([failure("notif-0"), success("notif-1")], now=T0)
    six_more = [failure(f"notif-{n}") for n in range(2, 8)]
    assert opens_after(six_more, now=T0 + MINUTE - timedelta(microseconds=1)) is None
    assert opens_after([failure("notif-9")], now=T0 + MINUTE) == 1


# Never five failures in a row: only the failure rate can open the breaker.
SIXTEEN_OF_TWENTY_FAIL = [*[failure("a"), failure("b"), failure("c"), failure("d"), success("e")] * 3,
                          failure("a"), failure("b"), failure("c"), success("e"), failure("d")]
FIFTEEN_OF_TWENTY_FAIL = [*SIXTEEN_OF_TWENTY_FAIL[:16], success("e"), success("f"), failure("d"), failure("a")]


@pytest.mark.parametrize(("outcomes", "opened_by"), [
    (SIXTEEN_OF_TWENTY_FAIL, 20),  # 16 of 20: the rate, at the volume; after 19 attempts it was below the volume
    (FIFTEEN_OF_TWENTY_FAIL, None),  # 15 of 20 attempts, then 16 of 21: below the rate
])
def test_the_failure_rate_opens_it_at_the_threshold_once_the_window_holds_the_minimum_of_attempts(
    outcomes, opened_by, caplog
):
    assert opens_after(outcomes) == opened_by
    if opened_by:
        assert "Webhook circuit breaker opened with 16 of 20 attempts failed within 0:01:00" in caplog.text


@pytest.mark.parametrize(("later", "opened_by"), [
    (MINUTE / 2, 8),  # the same bucket: 10 + 8 failures of 20 attempts
    (MINUTE + MINUTE / 4, 11),  # the bucket before counts three quarters: 7.5 + 11 failures of 1.5 + 7.5 + 11 attempts
    (2 * MINUTE, None),  # gone: 20 failures in a row would be needed
])
def test_failures_count_less_as_they_leave_the_window(settings, later, opened_by):
    settings.CERTCTL_CHANNEL_BREAKER_FAILURES = settings.CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS = 20
    breaker.record([*[failure(f"notif-{n}") for n in range(5)], success("notif-5")] * 2, now=T0)
    assert (state().window_failures, state().window_successes) == (10, 2)

    assert opens_after([failure(f"notif-{n}") for n in range(19)], now=T0 + later) == opened_by


def test_results_recorded_after_another_worker_moved_the_window_on_count_the_bucket_before_once(settings):
    settings.CERTCTL_CHANNEL_BREAKER_FAILURES = settings.CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS = 20
    breaker.record([*[failure(f"notif-{n}") for n in range(5)], success("notif-5")] * 2, now=T0)
    # The window moves on: 10 failures of 12 are the bucket before.
    breaker.record([success("notif-6")], now=T0 + MINUTE)

    # Finished half a minute before: 10 + 7 failures of 12 + 1 + 7 attempts.
    assert opens_after([failure(f"notif-{n}") for n in range(19)], now=T0 + MINUTE / 2) == 7


def test_the_database_refuses_counts_without_a_window():
    with pytest.raises(IntegrityError), transaction.atomic():
        destination_state("Slack", window_failures=1)


def random_outcomes(seed, count, failure_rate):
    rng = random.Random(seed)
    return [
        (failure if rng.random() < failure_rate else success)(f"notif-{n % 400}") for n in range(count)
    ]


def longest_run_of_failures(outcomes):
    return max(len(list(run)) for failed, run in itertools.groupby(o.transient_failure for o in outcomes) if failed)


@pytest.mark.parametrize(("seed", "chunk", "every"), [
    (1, 5, timedelta(seconds=0.25)),  # 1,200 attempts a minute, a chunk every 250 ms as a busy pass records them
    (2, 3, timedelta(seconds=3)),  # 60 a minute
    (3, 5, timedelta(seconds=30)),  # 10 a minute
])
def test_a_receiver_failing_30_percent_at_random_never_opens_the_breaker(seed, chunk, every, caplog):
    outcomes = random_outcomes(seed, 2000, 0.3)
    assert longest_run_of_failures(outcomes) >= 5  # what opened the breaker before

    with caplog.at_level(logging.WARNING, logger="notifications.breaker"):
        for n in range(0, len(outcomes), chunk):
            breaker.record(outcomes[n:n + chunk], now=T0 + n // chunk * every)

    assert caplog.messages == []
    assert state().state == "closed"


def test_a_receiver_failing_every_attempt_after_30_percent_at_random_opens_within_the_window():
    outcomes = random_outcomes(4, 600, 0.3)
    for n in range(0, len(outcomes), 10):
        breaker.record(outcomes[n:n + 10], now=T0 + n // 10 * timedelta(seconds=1))
    down_at = T0 + MINUTE
    for n in itertools.count():
        breaker.record([failure(f"notif-{n}") for _ in range(10)], now=down_at + n * timedelta(seconds=1))
        if state().state == "open":
            break
    assert state().opened_at - down_at <= MINUTE


def test_a_receiver_failing_30_percent_at_random_gets_every_event_through_the_engine_with_the_breaker_closed(
    webhook, settings, caplog
):
    settings.CERTCTL_NOTIFICATION_MAX_ATTEMPTS = 10
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 4
    attempts = Counter()

    def flaky(request):
        # Seeded by the event's message and attempt: the same answers whatever order concurrent requests arrive in.
        message = request.json()["message"]
        attempts[message] += 1
        failed = random.Random(f"{message}:{attempts[message]}").random() < 0.3
        return Reply(status=503, body="flaky") if failed else Reply()

    webhook.reply_by(flaky)
    now = T0
    with caplog.at_level(logging.WARNING, logger="notifications.breaker"):
        for step in range(15):  # 20 new events every 10 s for 2.5 minutes, and the retries that come due meanwhile
            with time_machine.travel(now, tick=False):
                for n in range(20):
                    create_event(
                        type="RenewalFailure", channel="Webhook", recipient="ops@example.com", message=f"{step}-{n}"
                    )
            passes.process_pending(now=now)
            now += timedelta(seconds=10)
        for _ in range(100):
            next_retry = NotificationEvent.objects.aggregate(due=Min("next_retry_at"))["due"]
            if next_retry is None:
                break
            now = max(now, next_retry)
            passes.retry_sweep(now=now)

    assert [r.getMessage() for r in caplog.records if r.name == "notifications.breaker"] == []
    assert state().state == "closed"
    assert NotificationEvent.objects.filter(status=Status.SENT).count() == 300
    failed_attempts = NotificationAttempt.objects.filter(outcome="transient_failure").count()
    assert failed_attempts == sum(attempts.values()) - 300 == 123  # 29 %


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_counting_a_destinations_first_failures_at_once_both_count(monkeypatch):
    Destination.objects.ensure_environment()  # as the migration left them (a flush may have removed them)
    create_row = DestinationState.objects.bulk_create

    def another_worker_creates_the_row_first(rows, **options):
        def insert_and_commit():
            DestinationState.objects.create(destination_id="Webhook")
            connections.close_all()

        other = threading.Thread(target=insert_and_commit)
        other.start()
        other.join()
        return create_row(rows, **options)

    monkeypatch.setattr(DestinationState.objects, "bulk_create", another_worker_creates_the_row_first)

    with transaction.atomic():
        breaker.record([failure("notif-1")], now=T0)

    assert (state().consecutive_failures, state().failing_events) == (1, ["notif-1"])


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_recording_chunks_at_once_count_every_outcome(monkeypatch):
    destination_state("Webhook")
    chunks = {
        "worker-a": [failure("notif-1"), success("notif-2"), success("notif-3"), failure("notif-4")],
        "worker-b": [failure("notif-5"), failure("notif-6"), success("notif-7")],
    }
    waiting_pid: list[int] = []
    a_holds_the_row = threading.Event()
    count = breaker._count

    def count_once_b_waits_for_the_row(state, outcomes, now):
        if threading.current_thread().name == "worker-a":
            a_holds_the_row.set()
            with connection.cursor() as cursor:
                for _ in range(100):  # until worker b waits for worker a's row lock (without one it never does)
                    cursor.execute("SELECT cardinality(pg_blocking_pids(%s))", waiting_pid or [0])
                    if cursor.fetchone()[0]:
                        break
                    time.sleep(0.02)
        count(state, outcomes, now)

    monkeypatch.setattr(breaker, "_count", count_once_b_waits_for_the_row)

    def worker():
        name = threading.current_thread().name
        if name == "worker-b":
            a_holds_the_row.wait(10)
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                waiting_pid.append(cursor.fetchone()[0])
        try:
            with transaction.atomic():
                breaker.record(chunks[name], now=T0)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, name=name) for name in chunks]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    webhook = state()
    assert (webhook.window_failures, webhook.window_successes) == (4, 3)
    assert (webhook.consecutive_failures, webhook.last_success_at) == (0, T0)


def test_a_success_that_closes_the_breaker_starts_the_counts_afresh_and_five_failures_open_it_again():
    # Flaky at first (a success), then down: the failure rate opens it, and failures go on while it is open.
    breaker.record([failure("notif-0"), success("notif-1"), *[failure(f"notif-{n}") for n in range(2, 40)]], now=T0)
    assert state().state == "open"

    breaker.record([success("notif-9")], now=T0 + STEP)  # the probe

    closed = state()
    assert (closed.state, closed.window_failures, closed.previous_window_failures, closed.last_success_at) == (
        "closed", 0, 0, None,
    )
    assert opens_after([failure("notif-3")], now=T0 + 2 * STEP) is None  # the outage's failures no longer count
    # Five in a row, as on a fresh channel.
    assert opens_after(FIVE_FAILURES_OF_THREE_EVENTS[1:], now=T0 + 2 * STEP) == 4


def test_opening_moves_the_channels_unclaimed_retries_due_before_the_first_probe_to_it(settings):
    settings.CERTCTL_CHANNEL_BREAKER_PROBE = 3 * MINUTE
    soon, at_probe, later = failed_event(T0 + MINUTE), failed_event(T0 + 3 * MINUTE), failed_event(T0 + 5 * MINUTE)
    leased, other_channel = failed_event(T0 + MINUTE, leased=True), failed_event(T0 + MINUTE, channel="Slack")

    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)

    assert (state().state, state().next_probe_at) == ("open", T0 + 3 * MINUTE)
    assert retry_times(soon, at_probe, later, leased, other_channel) == [
        T0 + 3 * MINUTE, T0 + 3 * MINUTE, T0 + 5 * MINUTE, T0 + MINUTE, T0 + MINUTE
    ]


def test_closing_makes_the_channels_unclaimed_retries_due_before_the_next_probe_due_at_once(settings):
    settings.CERTCTL_CHANNEL_BREAKER_PROBE = 3 * MINUTE
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)
    probe_time = T0 + 3 * MINUTE
    assert breaker.hold_and_probes(probe_time) == breaker.Held(frozenset({"Webhook"}), ("Webhook",))
    assert breaker.hold_and_probes(probe_time) == breaker.Held(frozenset({"Webhook"}), ())  # one probe per interval
    waited, at_next_probe, later = (failed_event(when) for when in (probe_time, T0 + 6 * MINUTE, T0 + 7 * MINUTE))
    leased, other_channel = failed_event(T0 + 4 * MINUTE, leased=True), failed_event(T0 + 4 * MINUTE, channel="Slack")

    breaker.record([failure("notif-0")], now=probe_time)  # a failed probe: still open since T0
    assert (state().state, state().opened_at, state().next_probe_at) == ("open", T0, T0 + 6 * MINUTE)
    breaker.record([success("notif-0")], now=probe_time + MINUTE)

    assert (state().state, state().consecutive_failures, state().failing_events) == ("closed", 0, [])
    assert retry_times(waited, at_next_probe, later, leased, other_channel) == [
        probe_time + MINUTE, probe_time + MINUTE, T0 + 7 * MINUTE, T0 + 4 * MINUTE, T0 + 4 * MINUTE
    ]


def test_a_paused_channel_gets_no_probe_even_while_its_breaker_is_open():
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)
    breaker.pause("Webhook", "alice", T0)

    assert breaker.hold_and_probes(T0 + 5 * MINUTE) == breaker.Held(frozenset({"Webhook"}), ())

    breaker.resume("Webhook")
    assert breaker.hold_and_probes(T0 + 5 * MINUTE) == breaker.Held(frozenset({"Webhook"}), ("Webhook",))


def test_two_open_channels_each_get_their_own_probe_when_it_is_due():
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)
    breaker.record([failure(f"notif-{n % 3}", channel="Slack") for n in range(5)], now=T0 + 2 * MINUTE)
    both = frozenset({"Slack", "Webhook"})

    assert breaker.hold_and_probes(T0 + MINUTE) == breaker.Held(both, ("Webhook",))
    assert breaker.hold_and_probes(T0 + 3 * MINUTE) == breaker.Held(both, ("Slack", "Webhook"))


def test_a_failed_probe_waits_for_the_next_probe_or_one_interval_when_the_breaker_closed_meanwhile():
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)
    assert breaker.probe_wait_for("Webhook", T0 + 30 * STEP) == T0 + MINUTE
    breaker.record([success("notif-9")], now=T0 + STEP)
    assert breaker.probe_wait_for("Webhook", T0 + 30 * STEP) == T0 + 30 * STEP + MINUTE
    assert breaker.probe_wait_for("Slack", T0) == T0 + MINUTE


@pytest.mark.parametrize(("breaker_meanwhile", "due_again"), [
    # Taking the probe at T0 set the next one for T0 + 1 minute; the probe failed 20 s later.
    ("still open", T0 + MINUTE), ("closed by another worker", T0 + STEP + MINUTE),
])
def test_a_failed_probe_of_a_failed_event_is_due_again_at_the_channels_next_probe(breaker_meanwhile, due_again):
    event = failed_event(T0)
    [probe] = claims.claim_due_events("retry", now=T0)
    probe.breaker_probe = True
    if breaker_meanwhile == "still open":
        destination_state("Webhook", opened_at=T0 - MINUTE, next_probe_at=T0 + MINUTE)
    failed = sender.Delivery(probe, DeliveryResult.transient("still down"), T0, 20, T0 + STEP)

    assert recording.record_results([failed]) == [Status.FAILED]

    assert retry_times(event) == [due_again]


class WorkerKilled(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def test_the_probe_is_an_event_of_the_open_channel_claimed_with_the_short_claim_lease(
    failing_webhook, settings, slack, monkeypatch
):
    settings.CERTCTL_SLACK_WEBHOOK_URL = slack.url + "/services/T0/B0/slacktoken"
    for n in range(5):
        create_at(T0, n)
    passes.process_pending(now=T0)
    with time_machine.travel(T0, tick=False):
        other, _ = create_event(type="RenewalFailure", channel="Slack", recipient="#pki", message="renewal failed")

    def die(*args):
        raise WorkerKilled

    monkeypatch.setattr(sender.Sender, "start", die)
    with pytest.raises(WorkerKilled):
        passes.process_pending(now=T0 + MINUTE)

    held = NotificationEvent.objects.filter(claim_token__isnull=False)
    assert sorted(held.values_list("channel", "claimed_until")) == [
        ("Slack", T0 + MINUTE + claims.claim_lease()), ("Webhook", T0 + MINUTE + claims.claim_lease()),
    ]


def test_a_pass_sends_the_probe_of_each_open_channel_and_a_success_closes_each(webhook, settings, slack):
    settings.CERTCTL_SLACK_WEBHOOK_URL = slack.url + "/services/T0/B0/slacktoken"
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)
    breaker.record([failure(f"notif-{n % 3}", channel="Slack") for n in range(5)], now=T0)
    create_at(T0, 1)
    with time_machine.travel(T0, tick=False):
        create_event(type="RenewalFailure", channel="Slack", recipient="#pki", message="renewal failed")

    assert passes.process_pending(now=T0 + MINUTE).outcomes == {"sent": 2}

    assert (len(webhook.requests), len(slack.requests)) == (1, 1)
    assert (state("Webhook").state, state("Slack").state) == ("closed", "closed")


def test_a_failed_probe_keeps_its_error_and_attempt_and_waits_for_the_next_probe(failing_webhook):
    events = [create_at(T0, n) for n in range(5)]
    passes.process_pending(now=T0)

    passes.process_pending(now=T0 + MINUTE)

    [probe] = [e for e in NotificationEvent.objects.filter(id__in=[e.id for e in events]) if e.attempt_count == 2]
    assert (probe.status, probe.retry_count, probe.next_retry_at, probe.last_error) == (
        Status.FAILED, 1, T0 + 2 * MINUTE, "Webhook receiver answered HTTP 500: receiver down"
    )
    assert list(probe.attempts.order_by("number").values_list("outcome", "resulting_status")) == [
        ("transient_failure", Status.FAILED), ("transient_failure", Status.FAILED)
    ]


# --- the operator's pause and resume (notifications.operations.channels), and the channel listing ----------------

OPERATOR = Actor("alice", "cli")


def listed(name):
    """The channel as the API, UI, CLI and MCP list it."""
    return next(channel for channel in channel_states() if channel["name"] == name)


@pytest.fixture
def broker(monkeypatch):
    """django-q2's async_task, recording the names of the tasks handed to the cluster."""
    handed = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **options: handed.append(func))
    return handed


def test_an_operator_pause_is_audited_once_and_takes_the_channel_name_in_any_letter_case(webhook, caplog):
    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        assert pause_channel("webhook", OPERATOR, now=T0)
        assert not pause_channel("WEBHOOK", Actor("bob", "api"), now=T0 + MINUTE)

    assert {key: listed("Webhook")[key] for key in ("state", "since", "paused_by")} == {
        "state": "paused", "since": T0, "paused_by": "alice",
    }
    assert list(ConfigurationAction.objects.values_list("target", "action", "actor", "source", "created_at")) == [
        ("Webhook", "pause", "alice", "cli", T0),
    ]
    assert caplog.messages == ["destination Webhook paused by alice via cli: its events wait until it is resumed"]
    assert caplog.records[0].destination == "Webhook"


def test_an_operator_resume_is_audited_and_hands_the_held_events_to_the_workers_at_once(
    webhook, caplog, broker, django_capture_on_commit_callbacks
):
    pause_channel("Webhook", OPERATOR, now=T0)
    broker.clear()

    with (
        caplog.at_level(logging.WARNING, logger="notifications.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert resume_channel("webHook", Actor("bob", "api"), now=T0 + MINUTE)

    assert broker == ["notifications.tasks.deliver_pending"]
    resumed = listed("Webhook")
    assert (resumed["state"], resumed["since"], resumed["paused_by"]) == ("closed", None, None)
    assert list(ConfigurationAction.objects.order_by("id").values_list("action", "actor", "source", "created_at")) == [
        ("pause", "alice", "cli", T0), ("resume", "bob", "api", T0 + MINUTE),
    ]
    assert caplog.messages[-1] == "destination Webhook resumed by bob via api"
    assert caplog.records[-1].destination == "Webhook"


def test_resuming_a_channel_that_is_not_paused_changes_nothing(
    webhook, caplog, broker, django_capture_on_commit_callbacks
):
    with (
        caplog.at_level(logging.WARNING, logger="notifications.services"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert not resume_channel("Webhook", OPERATOR, now=T0)

    assert (broker, caplog.messages) == ([], [])
    assert not ConfigurationAction.objects.exists()


@pytest.mark.parametrize("change", [pause_channel, resume_channel])
def test_an_unknown_channel_is_refused_naming_the_channels(db, change):
    with pytest.raises(UnknownChannel) as unknown:
        change("Pigeon", OPERATOR, now=T0)

    assert unknown.value.message == (
        "no channel 'Pigeon'; channels are Email, Webhook, Slack, Teams, PagerDuty, OpsGenie"
    )
    assert not ConfigurationAction.objects.exists()
    assert not DestinationState.objects.exists()


def test_an_open_channel_is_listed_with_when_it_opened_and_its_next_probe(db):
    destination_state("Slack", consecutive_failures=5, opened_at=T0, next_probe_at=T0 + MINUTE)

    assert listed("Slack") == {
        "name": "Slack", "configured": False, "state": "open", "since": T0, "paused_by": None,
        "consecutive_failures": 5, "next_probe_at": T0 + MINUTE,
    }


def test_a_paused_open_channel_is_listed_as_paused_since_the_pause_with_no_probe_due(db):
    destination_state("Slack", consecutive_failures=5, opened_at=T0, next_probe_at=T0 + MINUTE)
    pause_channel("Slack", OPERATOR, now=T0 + 2 * MINUTE)

    slack = listed("Slack")
    assert (slack["state"], slack["since"], slack["paused_by"], slack["next_probe_at"]) == (
        "paused", T0 + 2 * MINUTE, "alice", None,
    )
