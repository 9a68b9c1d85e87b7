"""The faults of the original certctl (DESIGN §8) that the delivery lifecycle could show.

3, 4, 5 and 11 are API faults (tests/api/test_faults.py), 7 and 9 channel faults (tests/notifiers),
6 is the PostgreSQL concurrency test in test_concurrency.py, 10 is a metrics fault.
"""
import pytest

from notifications.engine import passes
from notifications.errors import RequeueRefused
from notifications.operations.events import requeue_event, requeue_events
from notifications.queries.events import retry_display
from notifications.queries.summary import stats_summary
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, fail_until_dead, reload

pytestmark = pytest.mark.django_db


def test_fault_01_first_send_failure_is_scheduled_for_retry(failing_webhook, make_event):
    event = make_event()

    passes.process_pending(now=T0)

    event = reload(event)
    assert (event.status, event.retry_count, event.next_retry_at) == ("failed", 1, T0 + MINUTE)
    assert "HTTP 500" in event.last_error
    passes.retry_sweep(now=T0 + MINUTE)
    assert len(failing_webhook.requests) == 2
    assert reload(event).retry_count == 2


def test_fault_01_a_first_send_failure_is_dead_lettered_in_the_end(failing_webhook, make_event):
    event, _ = fail_until_dead(make_event())

    assert event.status == "dead"
    assert stats_summary(now=T0 + 60 * MINUTE)["notifications_dead"] == 1


def test_fault_02_requeue_of_sent_is_refused_and_not_redelivered(webhook, make_event):
    event = make_event()
    passes.process_pending(now=T0)
    assert reload(event).status == "sent"

    with pytest.raises(RequeueRefused) as refused:
        requeue_event(event.id, OPERATOR, now=T0 + MINUTE)
    bulk = requeue_events(OPERATOR, ids=[event.id], now=T0 + MINUTE)
    passes.process_pending(now=T0 + 2 * MINUTE)
    passes.retry_sweep(now=T0 + 2 * MINUTE)

    assert refused.value.current_status == "sent"
    assert (bulk.requeued, bulk.skipped) == (0, 1)
    assert reload(event).status == "sent"
    assert len(webhook.requests) == 1


@pytest.mark.parametrize(
    ("channel", "variable"),
    [("Slack", "CERTCTL_SLACK_WEBHOOK_URL"), ("PagerDuty", "CERTCTL_PAGERDUTY_ROUTING_KEY")],
)
def test_fault_08_missing_notifier_dead_letters_naming_the_variable_never_sent(make_event, channel, variable):
    event = make_event(channel=channel)

    passes.process_pending(now=T0)
    passes.retry_sweep(now=T0 + 60 * MINUTE)

    event = reload(event)
    assert (event.status, event.retry_count, event.sent_at, event.next_retry_at) == ("dead", 1, None, None)
    assert event.last_error == f"{channel} channel is not configured: set {variable}"
    attempt = event.attempts.get()
    # Nothing was sent.
    assert (attempt.outcome, attempt.started_at, attempt.duration_ms) == ("permanent_failure", T0, 0)
    summary = stats_summary(now=T0 + 60 * MINUTE)
    assert (summary["notifications_sent"], summary["notifications_dead"]) == (0, 1)


def test_fault_12_dead_after_five_failures_displays_retry_5_of_5(failing_webhook, make_event):
    event = make_event()
    passes.process_pending(now=T0)
    assert retry_display(reload(event)) == "Retry 1/5"

    event, _ = fail_until_dead(event, start=T0 + MINUTE)

    assert (event.status, event.retry_count) == ("dead", 5)
    assert retry_display(event) == "Retry 5/5"
