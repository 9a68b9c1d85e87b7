"""A pass claims with a lease just long enough to wait for a slot, deliver and record: a worker killed mid-pass
holds its claimed events about a minute, not a whole CERTCTL_NOTIFICATION_LEASE."""
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import QuerySet
from django.utils import timezone

from notifications.engine import breaker, claims, passes, sender
from notifications.engine.report import RELEASED
from notifications.models import NotificationEvent, Status
from notifications.operations.events import create_event
from tests.deliveries import InstantClock, destination_state
from tests.lifecycle.conftest import T0

SECOND = timedelta(seconds=1)
# Defaults: connect 5 s + read 15 s per delivery, 30 s of recording retries.
CLAIM_LEASE = 2 * 20 * SECOND + 30 * SECOND


class WorkerKilled(BaseException):
    """Stands for a SIGKILL: nothing after it runs, the claims stay as they were."""


def make_pending(count: int) -> list[NotificationEvent]:
    return [
        create_event(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message=f"cert {n}")[0]
        for n in range(count)
    ]


def test_the_claim_lease_covers_a_wait_a_delivery_and_the_recording_retries_within_the_configured_lease(
    settings: Any,
) -> None:
    assert claims.claim_lease() == CLAIM_LEASE
    assert claims.lease_left_to_start() == CLAIM_LEASE - 20 * SECOND
    settings.CERTCTL_NOTIFICATION_LEASE = 30 * SECOND
    assert claims.claim_lease() == 30 * SECOND


def test_a_pass_killed_before_it_sends_holds_its_claims_only_for_the_claim_lease(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_pending(3)

    def die(*args: object) -> None:
        raise WorkerKilled

    with monkeypatch.context() as patched:
        patched.setattr(sender.Sender, "start", die)
        with pytest.raises(WorkerKilled):
            passes.process_pending(now=T0)
    assert set(NotificationEvent.objects.values_list("claimed_until", flat=True)) == {T0 + CLAIM_LEASE}

    assert passes.process_pending(now=T0 + CLAIM_LEASE - SECOND).claimed == 0
    assert passes.process_pending(now=T0 + CLAIM_LEASE + SECOND).claimed == 3
    assert NotificationEvent.objects.filter(status=Status.SENT).count() == 3
    assert len(webhook.requests) == 3


def test_an_event_whose_lease_runs_short_before_its_send_starts_is_released_unsent(db: None, webhook: Any) -> None:
    make_pending(2)
    claimed = claims.claim_due_events("pending", now=T0, lease=claims.claim_lease())
    waited = claims.claim_lease() - claims.lease_left_to_start()

    assert passes.deliver_batch(claimed[:1], now=T0 + waited) == [Status.SENT]
    assert passes.deliver_batch(claimed[1:], now=T0 + waited + SECOND) == [RELEASED]

    assert len(webhook.requests) == 1
    released = NotificationEvent.objects.get(id=claimed[1].id)
    assert (released.status, released.claim_token, released.claimed_until, released.attempts.count()) == (
        Status.PENDING, None, None, 0,
    )


def failed_due_in(seconds: float) -> NotificationEvent:
    (event,) = make_pending(1)
    NotificationEvent.objects.filter(id=event.id).update(
        status=Status.FAILED, retry_count=1, next_retry_at=timezone.now() + timedelta(seconds=seconds)
    )
    return event


@pytest.mark.django_db(transaction=True)
def test_a_pass_stays_for_a_retry_due_within_seconds_instead_of_leaving_it_to_the_next_tick(webhook: Any) -> None:
    make_pending(1)
    event = failed_due_in(1.5)

    report = passes.process_pending()

    assert (report.claimed, report.outcomes) == (2, {"sent": 2})  # the pending one at once, the retry when due
    assert NotificationEvent.objects.get(id=event.id).status == Status.SENT
    assert len(webhook.requests) == 2


def test_a_pass_waits_until_the_next_retry_is_due_and_not_at_all_for_an_overdue_one(db: None) -> None:
    event = failed_due_in(0.4)
    assert 0.2 < passes._next_retry_within(passes.RETRY_LINGER) <= 0.4

    NotificationEvent.objects.filter(id=event.id).update(next_retry_at=timezone.now() - timedelta(seconds=3))
    assert passes._next_retry_within(passes.RETRY_LINGER) == 0.0


def test_a_pass_stays_for_no_retry_when_it_runs_at_a_given_time_or_the_retry_comes_after_its_window(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = failed_due_in(5)
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    assert passes.process_pending(now=timezone.now()).claimed == 0  # a pass at a given time is a test's or a tool's
    monkeypatch.setattr(claims, "start_window", lambda: 4.0)
    assert passes.process_pending().claimed == 0

    assert clock.sleeps == []
    assert NotificationEvent.objects.get(id=event.id).status == Status.FAILED


def test_a_pass_does_not_wait_for_a_retry_of_a_paused_channel(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = failed_due_in(0.3)
    breaker.pause("Webhook", "alice", timezone.now())
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    assert passes.process_pending().claimed == 0

    assert clock.sleeps == []  # it would stay, claiming nothing, until its start window closed
    assert NotificationEvent.objects.get(id=event.id).status == Status.FAILED


def test_a_pass_does_not_wait_for_a_retry_that_waits_for_its_open_channels_probe(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = failed_due_in(0.3)  # where an opening breaker put it: at the channel's next probe
    destination_state(
        "Webhook", consecutive_failures=5, opened_at=timezone.now(),
        next_probe_at=timezone.now() + timedelta(seconds=0.3),
    )
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    assert passes.process_pending().claimed == 0

    assert clock.sleeps == []  # it would stay for the probe, then for the next one, for as long as the receiver is down
    assert NotificationEvent.objects.get(id=event.id).status == Status.FAILED


def test_a_pass_stays_for_retries_no_longer_than_its_maximum_duration(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CERTCTL_NOTIFICATION_PASS_MAX_DURATION = 8 * SECOND
    failed_due_in(5)
    clock = InstantClock()  # real time stands still: the retry stays 5 s away, as a stream of retries always would be
    monkeypatch.setattr(passes, "time", clock)

    assert passes.process_pending().claimed == 0

    # It stays while the retry would come due within its 8 s, not for its start window (250 s).
    assert 0 < sum(clock.sleeps) <= 8


def test_a_pass_does_not_wait_for_a_retry_another_worker_holds(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = failed_due_in(0.3)
    NotificationEvent.objects.filter(id=event.id).update(
        claim_token="another-worker", claimed_until=timezone.now() + timedelta(minutes=5)
    )
    clock = InstantClock()
    monkeypatch.setattr(passes, "time", clock)

    assert passes.process_pending().claimed == 0

    assert clock.sleeps == []  # it would stay, claiming nothing, until its start window closed
    assert NotificationEvent.objects.get(id=event.id).claim_token == "another-worker"


@pytest.mark.django_db(transaction=True)
def test_a_pass_does_not_wait_for_a_retry_due_later_than_it_lingers(webhook: Any) -> None:
    event = failed_due_in(passes.RETRY_LINGER + 30)

    assert passes.process_pending().claimed == 0

    assert NotificationEvent.objects.get(id=event.id).status == Status.FAILED
    assert webhook.requests == []


def held_by_a_pass_killed_at_its_first_send(
    monkeypatch: pytest.MonkeyPatch, run_pass: Callable[[], object], pending: int, due_retries: int
) -> QuerySet[NotificationEvent]:
    """The events a pass held when its worker died at the first send: what it keeps until the claim lease ends."""
    make_pending(pending)
    for event in make_pending(due_retries):
        NotificationEvent.objects.filter(id=event.id).update(status=Status.FAILED, retry_count=1, next_retry_at=T0)

    def die(*args: object) -> None:
        raise WorkerKilled

    monkeypatch.setattr(sender.Sender, "start", die)
    with pytest.raises(WorkerKilled):
        run_pass()
    return NotificationEvent.objects.filter(claim_token__isnull=False)


@pytest.mark.parametrize(("kind", "limit", "claimed_kind", "claimed"), [
    ("pending", 10, Status.PENDING, 4), ("retry", 10, Status.FAILED, 4),
    ("pending", 3, Status.PENDING, 3), ("retry", 3, Status.FAILED, 3),
])
def test_a_pass_claims_its_own_kind_first_and_no_more_than_two_rounds_of_its_send_slots(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch, settings: Any,
    kind: str, limit: int, claimed_kind: str, claimed: int,
) -> None:
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 2
    run_pass = passes.process_pending if kind == "pending" else passes.retry_sweep
    held = held_by_a_pass_killed_at_its_first_send(
        monkeypatch, lambda: run_pass(now=T0, limit=limit), pending=5, due_retries=5
    )

    assert (held.count(), set(held.values_list("status", flat=True))) == (claimed, {claimed_kind})


def test_a_pass_tops_up_a_short_claim_of_its_own_kind_with_the_other_up_to_two_rounds_of_its_send_slots(
    db: None, webhook: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.CERTCTL_NOTIFICATION_CONCURRENCY = 2
    held = held_by_a_pass_killed_at_its_first_send(
        monkeypatch, lambda: passes.process_pending(now=T0), pending=1, due_retries=5
    )

    assert sorted(held.values_list("status", flat=True)) == [Status.FAILED] * 3 + [Status.PENDING]
