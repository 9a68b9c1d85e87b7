"""Creating events (dedup, validation), acknowledging them and the dashboard summary."""
import pytest
import time_machine

from notifications import services
from notifications.models import NotificationEvent
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, put_in_state, reload

pytestmark = pytest.mark.django_db

VALID = dict(type="ExpirationWarning", channel="Webhook", recipient="ops@example.com", message="api.example.com expires in 7 days")


def test_create_with_a_known_dedup_key_returns_the_existing_event():
    first, created = services.create_event(**VALID, dedup_key="expiry:api.example.com:7d")

    again, created_again = services.create_event(**{**VALID, "message": "a retry by the caller"}, dedup_key="expiry:api.example.com:7d")

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert again.message == VALID["message"]
    assert NotificationEvent.objects.count() == 1


def test_different_dedup_keys_make_different_events():
    services.create_event(**VALID, dedup_key="expiry:api.example.com:7d")
    services.create_event(**VALID, dedup_key="expiry:api.example.com:1d")

    assert NotificationEvent.objects.count() == 2


@pytest.mark.parametrize(
    "change, field, text",
    [
        ({"type": "CertificateExploded"}, "type", "unknown type 'CertificateExploded'"),
        ({"channel": "Fax"}, "channel", "unknown channel 'Fax'"),
        ({"recipient": ""}, "recipient", "must not be empty"),
        ({"recipient": "   "}, "recipient", "must not be empty"),
        ({"message": "x" * 101}, "message", "is 101 bytes; the limit is 100 (CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES)"),
        ({"message": "é" * 51}, "message", "is 102 bytes; the limit is 100"),
    ],
)
def test_create_rejects_invalid_input_naming_the_field(settings, change, field, text):
    settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = 100

    with pytest.raises(services.InvalidInput) as invalid:
        services.create_event(**{**VALID, **change})

    assert text in invalid.value.errors[field]
    assert not NotificationEvent.objects.exists()


def test_create_refuses_a_client_id_that_exists():
    services.create_event(**VALID, event_id="notif-client-1")

    with pytest.raises(services.InvalidInput) as invalid:
        services.create_event(**VALID, event_id="notif-client-1")

    assert invalid.value.errors == {"id": "notification notif-client-1 already exists"}


def test_mark_read_records_the_first_acknowledgement_only(make_event):
    event = put_in_state(make_event(), "dead")

    with time_machine.travel(T0, tick=False):
        services.mark_read(event.id, OPERATOR, now=T0)
    services.mark_read(event.id, services.Actor("bob", "ui"), now=T0 + MINUTE)

    event = reload(event)
    assert (event.read_at, event.status) == (T0, "dead")
    [action] = event.operator_actions.all()
    assert (action.action, action.actor, action.source, action.created_at) == ("mark_read", "alice", "api", T0)


def test_mark_read_of_unknown_id_raises_event_not_found(db):
    with pytest.raises(services.EventNotFound):
        services.mark_read("notif-nope", OPERATOR)


def test_stats_summary_counts_per_status_and_the_oldest_due_retry(make_event):
    for status in ("pending", "pending", "sent", "dead"):
        put_in_state(make_event(), status)
    for due_in in (-10, -3, 5):
        event = put_in_state(make_event(), "failed")
        NotificationEvent.objects.filter(id=event.id).update(next_retry_at=T0 + due_in * MINUTE)
    services.mark_read(event.id, OPERATOR, now=T0)

    summary = services.stats_summary(now=T0)

    assert {k: summary[k] for k in ("notifications_total", "notifications_pending", "notifications_sent",
                                     "notifications_failed", "notifications_dead", "notifications_unread")} == {
        "notifications_total": 7, "notifications_pending": 2, "notifications_sent": 1,
        "notifications_failed": 3, "notifications_dead": 1, "notifications_unread": 6,
    }
    assert summary["oldest_due_retry_at"] == T0 - 10 * MINUTE
    assert summary["oldest_due_retry_age_seconds"] == 600


def test_stats_summary_without_due_retries(make_event):
    put_in_state(make_event(), "failed")

    summary = services.stats_summary(now=T0)

    assert summary["oldest_due_retry_at"] is None
    assert summary["oldest_due_retry_age_seconds"] is None
