"""The per-channel circuit breaker and the maintenance pause, with a controlled clock."""
import logging
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connections, transaction

from notifications import breaker, delivery, services
from notifications.models import ChannelAction, ChannelState, NotificationAttempt, NotificationEvent, Status
from tests.lifecycle.conftest import MINUTE, T0
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.django_db

STEP = timedelta(seconds=20)


@pytest.fixture(autouse=True)
def _breaker_defaults(settings):
    settings.CERTCTL_CHANNEL_BREAKER_FAILURES = 5
    settings.CERTCTL_CHANNEL_BREAKER_MIN_EVENTS = 3
    settings.CERTCTL_CHANNEL_BREAKER_PROBE = MINUTE


def create_at(moment, n):
    with time_machine.travel(moment, tick=False):
        event, _ = services.create_event(
            type="RenewalFailure", channel="Webhook", recipient="ops@example.com", message=f"renewal {n} failed"
        )
    return event


def state(channel="Webhook"):
    return ChannelState.objects.filter(channel=channel).first()


@pytest.mark.postgres
def test_a_20_minute_outage_dead_letters_none_of_50_events_and_they_flow_once_it_ends(webhook):
    webhook.reply_with(Reply(status=503, body="upstream down"))
    outage_ends = T0 + 20 * MINUTE
    now, created = T0, []
    while now < outage_ends:
        if len(created) < 50:
            created.append(create_at(now, len(created)))  # one event comes due every 20 s
        delivery.process_pending(now=now)
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
        delivery.process_pending(now=now)
        now += STEP
    assert state().state == "closed"
    assert NotificationEvent.objects.filter(status=Status.SENT).count() == 50


def test_a_poison_event_still_goes_dead_after_its_own_attempts(failing_webhook):
    event = create_at(T0, 0)
    now = T0
    for _ in range(5):
        delivery.process_pending(now=now)
        event.refresh_from_db()
        now = event.next_retry_at or now
    assert event.status == Status.DEAD and event.retry_count == 5
    assert state().state == "closed"  # five failures, but of one event: not an outage


def test_permanent_failures_never_open_the_breaker(webhook):
    webhook.reply_with(Reply(status=400, body="bad payload"))
    for n in range(8):
        create_at(T0, n)
    delivery.process_pending(now=T0)
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
    delivery.process_pending(now=T0)
    assert state().state == "open"
    held = create_at(T0 + STEP, 99)
    with time_machine.travel(T0 + STEP, tick=False):
        other, _ = services.create_event(type="RenewalFailure", channel="Slack", recipient="#pki", message="renewal failed")

    delivery.process_pending(now=T0 + STEP)

    held.refresh_from_db()
    other.refresh_from_db()
    assert (held.status, held.attempt_count) == (Status.PENDING, 0)
    assert other.status == Status.SENT and len(slack.requests) == 1
    # The failed ones wait for the probe instead of coming due on their own backoff.
    assert set(NotificationEvent.objects.filter(status=Status.FAILED).values_list("next_retry_at", flat=True)) == {T0 + MINUTE}


def test_a_failed_probe_costs_no_retry_and_a_successful_one_closes_the_breaker(failing_webhook):
    for n in range(5):
        create_at(T0, n)
    delivery.process_pending(now=T0)
    retries_before = dict(NotificationEvent.objects.values_list("id", "retry_count"))

    report = delivery.process_pending(now=T0 + MINUTE)
    assert report.claimed == 1  # one probe, however many are due
    assert dict(NotificationEvent.objects.values_list("id", "retry_count")) == retries_before
    assert state().next_probe_at == T0 + 2 * MINUTE
    assert delivery.process_pending(now=T0 + MINUTE + STEP).claimed == 0  # no second probe within the interval

    failing_webhook.reply_with(Reply(status=200))
    report = delivery.process_pending(now=T0 + 2 * MINUTE)
    assert report.claimed == 5 and report.outcomes == {"sent": 5}
    assert state().state == "closed"


def test_a_paused_channel_holds_its_events_without_probes_until_resumed(webhook):
    assert breaker.pause("Webhook", "alice", T0)
    assert not breaker.pause("Webhook", "bob", T0)  # already paused: the first pause stands
    event = create_at(T0, 0)

    assert delivery.process_pending(now=T0 + 5 * MINUTE).claimed == 0
    event.refresh_from_db()
    assert (event.status, webhook.requests) == (Status.PENDING, [])
    assert (state().state, state().paused_by) == ("paused", "alice")

    assert breaker.resume("Webhook")
    assert not breaker.resume("Webhook")  # not paused any more
    assert (state().state, state().paused_at, state().paused_by) == ("closed", None, "")
    assert delivery.process_pending(now=T0 + 5 * MINUTE).claimed == 1
    event.refresh_from_db()
    assert event.status == Status.SENT


def test_the_breaker_logs_once_when_it_opens_and_once_when_it_closes(failing_webhook, caplog):
    for n in range(5):
        create_at(T0, n)

    with caplog.at_level(logging.WARNING, logger="notifications.breaker"):
        delivery.process_pending(now=T0)
        delivery.process_pending(now=T0 + MINUTE)  # a failed probe: still open, nothing more to say
        failing_webhook.reply_with(Reply(status=200))
        delivery.process_pending(now=T0 + 2 * MINUTE)

    assert [(r.levelname, r.getMessage(), r.channel) for r in caplog.records if r.name == "notifications.breaker"] == [
        ("WARNING", "Webhook circuit breaker opened after 5 consecutive transient failures; its events wait, one is tried "
                    "every 0:01:00", "Webhook"),
        ("WARNING", "Webhook circuit breaker closed: a delivery succeeded; waiting events flow again", "Webhook"),
    ]


def test_the_probe_is_one_event_of_the_passs_own_kind_and_a_failed_pending_probe_stays_pending(failing_webhook):
    for n in range(5):
        create_at(T0, n)
    delivery.process_pending(now=T0)
    waiting = create_at(T0 + STEP, 99)

    assert delivery.process_pending(now=T0 + MINUTE).claimed == 1

    waiting.refresh_from_db()
    assert (waiting.status, waiting.retry_count, waiting.next_retry_at, waiting.attempt_count) == (Status.PENDING, 0, None, 1)


def failure(event_id, channel="Webhook"):
    return breaker.Outcome(channel=channel, event_id=event_id, transient_failure=True, success=False)


def success(event_id, channel="Webhook"):
    return breaker.Outcome(channel=channel, event_id=event_id, transient_failure=False, success=True)


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

    breaker.record([failure("notif-0")], now=T0 + MINUTE)
    assert (state().state, state().opened_at, state().next_probe_at) == ("open", T0 + MINUTE, T0 + 2 * MINUTE)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_counting_a_channels_first_failures_at_once_both_count(monkeypatch):
    create_row = ChannelState.objects.bulk_create

    def another_worker_creates_the_row_first(rows, **options):
        def insert_and_commit():
            ChannelState.objects.create(channel="Webhook")
            connections.close_all()

        other = threading.Thread(target=insert_and_commit)
        other.start()
        other.join()
        return create_row(rows, **options)

    monkeypatch.setattr(ChannelState.objects, "bulk_create", another_worker_creates_the_row_first)

    with transaction.atomic():
        breaker.record([failure("notif-1")], now=T0)

    assert (state().consecutive_failures, state().failing_events) == (1, ["notif-1"])


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
    waited, at_next_probe, later = failed_event(probe_time), failed_event(T0 + 6 * MINUTE), failed_event(T0 + 7 * MINUTE)
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


@pytest.mark.parametrize("breaker_meanwhile, due_again", [
    # Taking the probe at T0 set the next one for T0 + 1 minute; the probe failed 20 s later.
    ("still open", T0 + MINUTE), ("closed by another worker", T0 + STEP + MINUTE),
])
def test_a_failed_probe_of_a_failed_event_is_due_again_at_the_channels_next_probe(breaker_meanwhile, due_again):
    event = failed_event(T0)
    [probe] = delivery.claim_due_events("retry", now=T0)
    probe.breaker_probe = True
    if breaker_meanwhile == "still open":
        ChannelState.objects.create(channel="Webhook", opened_at=T0 - MINUTE, next_probe_at=T0 + MINUTE)
    failed = delivery.Delivery(probe, delivery.DeliveryResult.transient("still down"), T0, 20, T0 + STEP)

    assert delivery.record_results([failed]) == [Status.FAILED]

    assert retry_times(event) == [due_again]


class WorkerKilled(BaseException):
    """Stands for a SIGKILL: nothing after it runs."""


def test_the_probe_is_an_event_of_the_open_channel_claimed_with_the_short_claim_lease(failing_webhook, settings, slack, monkeypatch):
    settings.CERTCTL_SLACK_WEBHOOK_URL = slack.url + "/services/T0/B0/slacktoken"
    for n in range(5):
        create_at(T0, n)
    delivery.process_pending(now=T0)
    with time_machine.travel(T0, tick=False):
        other, _ = services.create_event(type="RenewalFailure", channel="Slack", recipient="#pki", message="renewal failed")

    def die(*args):
        raise WorkerKilled

    monkeypatch.setattr(delivery.Sender, "start", die)
    with pytest.raises(WorkerKilled):
        delivery.process_pending(now=T0 + MINUTE)

    held = NotificationEvent.objects.filter(claim_token__isnull=False)
    assert sorted(held.values_list("channel", "claimed_until")) == [
        ("Slack", T0 + MINUTE + delivery.claim_lease()), ("Webhook", T0 + MINUTE + delivery.claim_lease()),
    ]


def test_a_pass_sends_the_probe_of_each_open_channel_and_a_success_closes_each(webhook, settings, slack):
    settings.CERTCTL_SLACK_WEBHOOK_URL = slack.url + "/services/T0/B0/slacktoken"
    breaker.record(FIVE_FAILURES_OF_THREE_EVENTS, now=T0)
    breaker.record([failure(f"notif-{n % 3}", channel="Slack") for n in range(5)], now=T0)
    create_at(T0, 1)
    with time_machine.travel(T0, tick=False):
        services.create_event(type="RenewalFailure", channel="Slack", recipient="#pki", message="renewal failed")

    assert delivery.process_pending(now=T0 + MINUTE).outcomes == {"sent": 2}

    assert (len(webhook.requests), len(slack.requests)) == (1, 1)
    assert (state("Webhook").state, state("Slack").state) == ("closed", "closed")


def test_a_failed_probe_keeps_its_error_and_attempt_and_waits_for_the_next_probe(failing_webhook):
    events = [create_at(T0, n) for n in range(5)]
    delivery.process_pending(now=T0)

    delivery.process_pending(now=T0 + MINUTE)

    [probe] = [e for e in NotificationEvent.objects.filter(id__in=[e.id for e in events]) if e.attempt_count == 2]
    assert (probe.status, probe.retry_count, probe.next_retry_at, probe.last_error) == (
        Status.FAILED, 1, T0 + 2 * MINUTE, "Webhook receiver answered HTTP 500: receiver down"
    )
    assert list(probe.attempts.order_by("number").values_list("outcome", "resulting_status")) == [
        ("transient_failure", Status.FAILED), ("transient_failure", Status.FAILED)
    ]


# --- the operator's pause and resume (notifications.services), and the channel listing --------------------------

OPERATOR = services.Actor("alice", "cli")


def listed(name):
    """The channel as the API, UI, CLI and MCP list it."""
    return next(channel for channel in services.channel_states() if channel["name"] == name)


@pytest.fixture
def broker(monkeypatch):
    """django-q2's async_task, recording the names of the tasks handed to the cluster."""
    handed = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda func, *args, **options: handed.append(func))
    return handed


def test_an_operator_pause_is_audited_once_and_takes_the_channel_name_in_any_letter_case(webhook, caplog):
    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        assert services.pause_channel("webhook", OPERATOR, now=T0)
        assert not services.pause_channel("WEBHOOK", services.Actor("bob", "api"), now=T0 + MINUTE)

    assert {key: listed("Webhook")[key] for key in ("state", "since", "paused_by")} == {
        "state": "paused", "since": T0, "paused_by": "alice",
    }
    assert list(ChannelAction.objects.values_list("channel", "action", "actor", "source", "created_at")) == [
        ("Webhook", "pause", "alice", "cli", T0),
    ]
    assert caplog.messages == ["channel Webhook paused by alice via cli: its events wait until it is resumed"]
    assert caplog.records[0].channel == "Webhook"


def test_an_operator_resume_is_audited_and_hands_the_held_events_to_the_workers_at_once(
    webhook, caplog, broker, django_capture_on_commit_callbacks
):
    services.pause_channel("Webhook", OPERATOR, now=T0)
    broker.clear()

    with caplog.at_level(logging.WARNING, logger="notifications.services"), django_capture_on_commit_callbacks(execute=True):
        assert services.resume_channel("webHook", services.Actor("bob", "api"), now=T0 + MINUTE)

    assert broker == ["notifications.tasks.deliver_pending"]
    assert (listed("Webhook")["state"], listed("Webhook")["since"], listed("Webhook")["paused_by"]) == ("closed", None, None)
    assert list(ChannelAction.objects.order_by("id").values_list("action", "actor", "source", "created_at")) == [
        ("pause", "alice", "cli", T0), ("resume", "bob", "api", T0 + MINUTE),
    ]
    assert caplog.messages[-1] == "channel Webhook resumed by bob via api"
    assert caplog.records[-1].channel == "Webhook"


def test_resuming_a_channel_that_is_not_paused_changes_nothing(webhook, caplog, broker, django_capture_on_commit_callbacks):
    with caplog.at_level(logging.WARNING, logger="notifications.services"), django_capture_on_commit_callbacks(execute=True):
        assert not services.resume_channel("Webhook", OPERATOR, now=T0)

    assert (broker, caplog.messages) == ([], [])
    assert not ChannelAction.objects.exists()


@pytest.mark.parametrize("change", [services.pause_channel, services.resume_channel])
def test_an_unknown_channel_is_refused_naming_the_channels(db, change):
    with pytest.raises(services.UnknownChannel) as unknown:
        change("Pigeon", OPERATOR, now=T0)

    assert unknown.value.message == "no channel 'Pigeon'; channels are Email, Webhook, Slack, Teams, PagerDuty, OpsGenie"
    assert not ChannelAction.objects.exists() and not ChannelState.objects.exists()


def test_an_open_channel_is_listed_with_when_it_opened_and_its_next_probe(db):
    ChannelState.objects.create(channel="Slack", consecutive_failures=5, opened_at=T0, next_probe_at=T0 + MINUTE)

    assert listed("Slack") == {
        "name": "Slack", "configured": False, "state": "open", "since": T0, "paused_by": None,
        "consecutive_failures": 5, "next_probe_at": T0 + MINUTE,
    }


def test_a_paused_open_channel_is_listed_as_paused_since_the_pause_with_no_probe_due(db):
    ChannelState.objects.create(channel="Slack", consecutive_failures=5, opened_at=T0, next_probe_at=T0 + MINUTE)
    services.pause_channel("Slack", OPERATOR, now=T0 + 2 * MINUTE)

    slack = listed("Slack")
    assert (slack["state"], slack["since"], slack["paused_by"], slack["next_probe_at"]) == ("paused", T0 + 2 * MINUTE, "alice", None)
