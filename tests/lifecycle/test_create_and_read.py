"""Creating events (dedup, validation), acknowledging them and the dashboard summary."""
import logging

import psycopg
import pytest
import time_machine
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from notifications.actors import Actor
from notifications.errors import EventNotFound, InvalidInput
from notifications.models import NotificationEvent
from notifications.operations.events import create_event, mark_read, validate_event_input
from notifications.queries.events import get_event
from notifications.queries.summary import stats_summary
from tests.lifecycle.conftest import MINUTE, OPERATOR, T0, put_in_state, reload

pytestmark = pytest.mark.django_db

VALID = dict(
    type="ExpirationWarning", channel="Webhook", recipient="ops@example.com",
    message="api.example.com expires in 7 days",
)


def test_create_with_a_known_dedup_key_returns_the_existing_event():
    first, created = create_event(**VALID, dedup_key="expiry:api.example.com:7d")

    again, created_again = create_event(
        **{**VALID, "message": "a retry by the caller"}, dedup_key="expiry:api.example.com:7d"
    )

    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert again.message == VALID["message"]
    assert NotificationEvent.objects.count() == 1


def test_different_dedup_keys_make_different_events():
    without_key, _ = create_event(**VALID)
    create_event(**VALID, dedup_key="expiry:api.example.com:7d")
    event, created = create_event(**VALID, dedup_key="expiry:api.example.com:1d")

    assert created
    assert event.id != without_key.id
    assert NotificationEvent.objects.count() == 3


@pytest.mark.postgres
def test_a_create_that_loses_the_race_for_a_dedup_key_returns_the_winners_event(transactional_db, monkeypatch):
    create = NotificationEvent.objects.create
    db = connection.settings_dict

    def another_request_commits_first(**fields):
        # The other request passed the same dedup check a moment earlier and commits its insert first.
        with psycopg.connect(
            host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"] or None,
            dbname=db["NAME"],
        ) as other:
            other.execute(
                f"INSERT INTO {NotificationEvent._meta.db_table} (id, type, channel, recipient, message, dedup_key) "
                "VALUES ('notif-winner', %s, %s, %s, 'the other request', %s)",
                [fields["type"], fields["channel"], fields["recipient"], fields["dedup_key"]],
            )
        return create(**fields)

    monkeypatch.setattr(NotificationEvent.objects, "create", another_request_commits_first)
    event, created = create_event(**VALID, dedup_key="expiry:api.example.com:7d")

    assert (event.id, event.message, created) == ("notif-winner", "the other request", False)
    assert NotificationEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field", "text"),
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

    with pytest.raises(InvalidInput) as invalid:
        create_event(**{**VALID, **change})

    assert text in invalid.value.errors[field]
    assert not NotificationEvent.objects.exists()


TYPES = (
    "ExpirationWarning, RenewalSuccess, RenewalFailure, DeploymentSuccess, DeploymentFailure, PolicyViolation, "
    "Revocation"
)
CHANNELS = "Email, Webhook, Slack, Teams, PagerDuty, OpsGenie"


ID_RULE = "1 to 64 letters, digits or . _ ~ : -, starting with a letter or digit"
REFUSALS = [
    ({"type": "CertificateExploded"}, {"type": f"unknown type 'CertificateExploded'; expected one of {TYPES}"}),
    ({"channel": "Fax"}, {"channel": f"unknown channel 'Fax'; expected one of {CHANNELS}"}),
    ({"recipient": None}, {"recipient": "must not be empty"}),
    ({"recipient": "r" * 1025}, {"recipient": "must be at most 1024 characters"}),
    ({"recipient": "ops@example.com\nBcc: all@example.com"}, {"recipient": "must not contain line breaks"}),
    ({"recipient": "ops@example.com\r"}, {"recipient": "must not contain line breaks"}),
    ({"message": None}, {"message": "must not be empty"}),
    ({"message": " \n "}, {"message": "must not be empty"}),
    ({"message": "x" * 101}, {"message": "is 101 bytes; the limit is 100 (CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES)"}),
    (
        {"severity": "urgent"},
        {"severity": "unknown severity 'urgent'; expected one of informational, warning, critical"},
    ),
    ({"certificate_id": "c" * 256}, {"certificate_id": "must be at most 255 characters"}),
    ({"dedup_key": ""}, {"dedup_key": "must be 1 to 255 characters"}),
    ({"dedup_key": "k" * 256}, {"dedup_key": "must be 1 to 255 characters"}),
    *(
        ({"event_id": bad}, {"id": f"must be {ID_RULE} (it becomes part of URLs)"})
        for bad in ("", "i" * 65, "imp-slash/../x", "..", "-lead", "trailing-newline\n", "sp ace", "\x1b[31mred", "é")
    ),
    ({"event_id": "requeue"}, {"id": "'requeue' is reserved (a path of the API or the web UI); choose another id"}),
    (
        {"event_id": "dismiss-group"},
        {"id": "'dismiss-group' is reserved (a path of the API or the web UI); choose another id"},
    ),
]


@pytest.mark.parametrize(("change", "errors"), REFUSALS)
def test_each_rule_refuses_with_its_whole_message(settings, change, errors):
    settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = 100

    with pytest.raises(InvalidInput) as invalid:
        validate_event_input(**{**VALID, **change})

    assert invalid.value.errors == errors


# create_event takes an empty dedup key for none; every other refusal is the same.
@pytest.mark.parametrize(("change", "errors"), [case for case in REFUSALS if case[0] != {"dedup_key": ""}])
def test_create_refuses_what_validation_refuses_and_stores_nothing(settings, change, errors):
    settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = 100

    with pytest.raises(InvalidInput) as invalid:
        create_event(**{**VALID, **change})

    assert invalid.value.errors == errors
    assert not NotificationEvent.objects.exists()


def test_every_broken_field_is_named_at_once_in_the_message():
    with pytest.raises(InvalidInput) as invalid:
        create_event(**{**VALID, "channel": "Fax", "recipient": ""})

    assert invalid.value.message == (
        f"channel: unknown channel 'Fax'; expected one of {CHANNELS}; recipient: must not be empty"
    )


def test_values_at_each_limit_are_accepted_and_stored(settings):
    settings.CERTCTL_NOTIFICATION_MAX_MESSAGE_BYTES = 100
    at_limits = dict(
        type="Revocation", channel="Slack", recipient="  X" + "r" * 1021, message="é" * 50, severity="critical",
        certificate_id="c" * 255, dedup_key="k" * 255, event_id="i" * 64,
    )
    validate_event_input(**{**at_limits, "dedup_key": "k", "event_id": "i"})

    event, created = create_event(**at_limits)

    assert created
    stored = NotificationEvent.objects.values().get()
    given = ("id", "type", "channel", "recipient", "message", "severity", "certificate_id", "dedup_key")
    assert {name: stored[name] for name in given} == {
        "id": "i" * 64, "type": "Revocation", "channel": "Slack", "recipient": "X" + "r" * 1021, "message": "é" * 50,
        "severity": "critical", "certificate_id": "c" * 255, "dedup_key": "k" * 255,
    }
    assert (stored["status"], event.id) == ("pending", "i" * 64)


def test_empty_optional_fields_are_stored_as_absent():
    validate_event_input(**VALID, severity="")
    event, _ = create_event(**VALID, certificate_id="", severity="", dedup_key="")

    stored = NotificationEvent.objects.values("certificate_id", "severity", "dedup_key").get(id=event.id)
    assert stored == {"certificate_id": None, "severity": None, "dedup_key": None}


def test_create_refuses_a_client_id_that_exists():
    create_event(**VALID, event_id="notif-client-1")

    with pytest.raises(InvalidInput) as invalid:
        create_event(**VALID, event_id="notif-client-1")

    assert invalid.value.errors == {"id": "notification notif-client-1 already exists"}


def test_a_create_with_a_client_id_failing_on_another_constraint_is_not_called_a_taken_id(monkeypatch):
    def violates_a_check(**fields):
        raise IntegrityError('new row for relation "notification_events" violates check constraint "some_check"')

    monkeypatch.setattr(NotificationEvent.objects, "create", violates_a_check)

    with pytest.raises(IntegrityError, match="some_check"):
        create_event(**VALID, event_id="notif-client-2")


def test_mark_read_records_the_first_acknowledgement_only(make_event):
    event = put_in_state(make_event(), "dead")

    with time_machine.travel(T0, tick=False):
        mark_read(event.id, OPERATOR, now=T0)
    mark_read(event.id, Actor("bob", "ui"), now=T0 + MINUTE)

    event = reload(event)
    assert (event.read_at, event.status) == (T0, "dead")
    [action] = event.operator_actions.all()
    assert (action.action, action.actor, action.source, action.created_at) == ("mark_read", "alice", "api", T0)


def test_reading_an_unknown_id_raises_event_not_found_naming_it(db):
    with pytest.raises(EventNotFound) as missing:
        get_event("notif-nope")

    assert (missing.value.message, missing.value.event_id) == ("notification notif-nope not found", "notif-nope")
    assert str(missing.value) == "notification notif-nope not found"  # as a traceback or log line shows it


def test_mark_read_of_unknown_id_raises_event_not_found(db):
    with pytest.raises(EventNotFound) as missing:
        mark_read("notif-nope", OPERATOR)

    assert missing.value.message == "notification notif-nope not found"


def test_mark_read_is_logged_once_with_who(make_event, caplog):
    event = put_in_state(make_event(), "dead")
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="notifications.services"):
        mark_read(event.id, OPERATOR, now=T0)
        mark_read(event.id, Actor("bob", "ui"), now=T0 + MINUTE)

    assert caplog.messages == [f"marked event {event.id} read by alice via api"]
    assert caplog.records[0].event_id == event.id
    event = reload(event)
    assert (event.read_at, event.updated_at, event.operator_actions.get().previous_status) == (T0, T0, "dead")


def test_a_new_event_is_logged_with_its_type_and_channel(caplog):
    with caplog.at_level(logging.INFO, logger="notifications.services"):
        event, _ = create_event(**VALID)

    assert caplog.messages == [f"created event {event.id}: ExpirationWarning via Webhook"]
    created = caplog.records[0]
    assert (created.event_id, created.channel, created.status) == (event.id, "Webhook", "pending")


def test_stats_summary_counts_per_status_and_the_oldest_due_retry(make_event):
    for status in ("pending", "pending", "sent", "dead"):
        put_in_state(make_event(), status)
    for due_in in (-10, -3, 5):
        event = put_in_state(make_event(), "failed")
        NotificationEvent.objects.filter(id=event.id).update(next_retry_at=T0 + due_in * MINUTE)
    mark_read(event.id, OPERATOR, now=T0)

    summary = stats_summary(now=T0)

    assert {k: summary[k] for k in ("notifications_total", "notifications_pending", "notifications_sent",
                                     "notifications_failed", "notifications_dead", "notifications_unread")} == {
        "notifications_total": 7, "notifications_pending": 2, "notifications_sent": 1,
        "notifications_failed": 3, "notifications_dead": 1, "notifications_unread": 6,
    }
    assert summary["oldest_due_retry_at"] == T0 - 10 * MINUTE
    assert summary["oldest_due_retry_age_seconds"] == 600
    assert (summary["notifications_dead_unacknowledged"], summary["completed_at"]) == (1, T0)


def test_the_summary_takes_every_count_from_one_read_so_that_they_agree(make_event):
    put_in_state(make_event(), "dead")
    counted = "notification_counts" if connection.vendor == "postgresql" else "notification_events"

    with CaptureQueriesContext(connection) as queries:
        summary = stats_summary(now=T0)

    assert len([q for q in queries.captured_queries if f'FROM "{counted}"' in q["sql"] and "GROUP BY" in q["sql"]]) == 1
    assert [summary[f"notifications_{name}"] for name in ("dead", "dead_unacknowledged", "unread")] == [1, 1, 1]


def test_a_retry_due_this_very_moment_is_the_oldest_due(make_event):
    event = put_in_state(make_event(), "failed")
    NotificationEvent.objects.filter(id=event.id).update(next_retry_at=T0)

    summary = stats_summary(now=T0)

    assert (summary["oldest_due_retry_at"], summary["oldest_due_retry_age_seconds"]) == (T0, 0)


def test_stats_summary_without_due_retries(make_event):
    put_in_state(make_event(), "failed")

    summary = stats_summary(now=T0)

    assert summary["oldest_due_retry_at"] is None
    assert summary["oldest_due_retry_age_seconds"] is None
