"""Destinations managed at runtime: each change validated by its channel's notifier, audited, counted in
ConfigVersion; secrets sealed and write-only; environment destinations read-only; a test delivery is real."""
import pytest
from django.db import connection

from notifications.actors import Actor
from notifications.engine import passes
from notifications.errors import (
    DestinationExists,
    DestinationInUse,
    DestinationNotFound,
    EnvironmentDestination,
    InvalidInput,
    SecretsUnavailable,
)
from notifications.models import ConfigurationAction, ConfigVersion, Destination, NotificationEvent, Route
from notifications.notifiers import notifiers
from notifications.operations.destinations import (
    create_destination,
    delete_destination,
    send_test,
    update_destination,
)
from notifications.operations.events import create_event
from notifications.operations.pausing import pause_destination
from notifications.queries.destination_health import destination_states
from notifications.queries.destinations import destination_list, get_destination
from tests.receivers import Reply

pytestmark = pytest.mark.django_db
ADMIN = Actor("alice", "api")
SECRET = "hook-secret-8f2c1a9e"


def _webhook(receiver, name="payments", description=""):
    return create_destination(
        name=name, channel="Webhook", config={"url": receiver.url + "/hook", "secret": SECRET},
        description=description, actor=ADMIN,
    )


def _raw_secrets(name):
    with connection.cursor() as cursor:
        cursor.execute(
            "select sealed_secrets, cast(config as text) from notification_destinations where name = %s", [name]
        )
        return cursor.fetchone()


# --- validation by the notifier -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "config", "field", "says"),
    [
        ("Webhook", {}, "url", "required"),
        ("Webhook", {"url": "ftp://example.com/x"}, "url", "http(s) URL"),
        ("Webhook", {"url": "https://example.com/x", "secret": "whsec_not*base64!"}, "secret", "not base64"),
        ("Webhook", {"url": "https://example.com/x", "colour": "red"}, "colour", "accepted are url, secret"),
        ("Email", {"host": "smtp.example.com", "from_address": "not an address"}, "from_address", "e-mail address"),
        ("Email", {"host": "smtp.example.com", "from_address": "a@example.com", "port": "25"}, "port", "whole number"),
        ("Email", {"host": "smtp.example.com", "from_address": "a@example.com", "use_tls": "yes"}, "use_tls", "true"),
        ("OpsGenie", {"api_key": "k" * 20, "default_priority": "P9"}, "default_priority", "one of P1"),
        ("Slack", {"webhook_url": "https://hooks.slack.com/x\x00"}, "webhook_url", "NUL"),
    ],
)
def test_the_channels_notifier_refuses_a_bad_config_naming_the_field(channel, config, field, says):
    assert says in notifiers()[channel].config_problems(config)[field]
    with pytest.raises(InvalidInput) as refused:
        create_destination(name="bad", channel=channel, config=config, actor=ADMIN)
    assert says in refused.value.errors[f"config.{field}"]
    assert not Destination.objects.filter(name="bad").exists()


def test_a_good_config_has_no_problem():
    assert notifiers()["Email"].config_problems(
        {"host": "smtp.example.com", "from_address": "Alerts <a@example.com>", "port": 465, "use_tls": True}
    ) == {}


def test_name_channel_and_description_are_checked():
    with pytest.raises(InvalidInput) as refused:
        create_destination(name="9 bad", channel="Fax", config={}, description="x" * 501, actor=ADMIN)
    assert set(refused.value.errors) == {"name", "channel", "description"}


# --- create ---------------------------------------------------------------------------------------------------


def test_create_seals_the_secret_fields_audits_and_bumps_the_version(receiver):
    before = ConfigVersion.objects.current()
    _webhook(receiver, description="payments team")
    sealed, config = _raw_secrets("payments")
    assert SECRET not in sealed
    assert receiver.url not in sealed
    assert SECRET not in config
    assert "hook" not in config
    assert ConfigVersion.objects.current() == before + 1
    action = ConfigurationAction.objects.get(target="payments")
    assert (action.action, action.actor, action.source) == ("create", "alice", "api")
    assert action.detail["fields"] == ["description", "secret", "url"]
    assert SECRET not in str(action.detail)
    row = get_destination("payments")
    assert row["secrets_set"] == ["url", "secret"]
    assert row["config"] == {}
    assert row["configured"]


def test_a_taken_name_is_refused_environment_names_included(receiver):
    _webhook(receiver)
    with pytest.raises(DestinationExists):
        _webhook(receiver)
    with pytest.raises(DestinationExists):
        _webhook(receiver, name="Slack")


def test_without_a_secrets_key_a_secret_cannot_be_stored_and_the_message_says_what_to_set(settings, receiver):
    settings.CERTCTL_SECRETS_KEYS = ""
    with pytest.raises(SecretsUnavailable, match="CERTCTL_SECRETS_KEYS"):
        _webhook(receiver)
    assert not Destination.objects.filter(name="payments").exists()


# --- update ---------------------------------------------------------------------------------------------------


def test_an_omitted_secret_keeps_its_value_and_an_empty_one_clears_it(receiver):
    _webhook(receiver)
    update_destination("payments", config={"url": receiver.url + "/other"}, actor=ADMIN)
    assert get_destination("payments")["secrets_set"] == ["url", "secret"]
    assert ConfigurationAction.objects.filter(action="update").get().detail == {"fields": ["url"]}
    update_destination("payments", config={"secret": ""}, actor=Actor("bob", "ui"))
    assert get_destination("payments")["secrets_set"] == ["url"]
    assert ConfigurationAction.objects.filter(action="update").first().detail == {"fields": ["secret"]}


def test_an_update_that_changes_nothing_writes_nothing(receiver):
    _webhook(receiver)
    version = ConfigVersion.objects.current()
    update_destination("payments", config={"secret": SECRET}, enabled=True, actor=ADMIN)
    assert ConfigVersion.objects.current() == version
    assert not ConfigurationAction.objects.filter(action="update").exists()


def test_an_update_is_validated_on_the_merged_config(receiver):
    _webhook(receiver)
    with pytest.raises(InvalidInput) as refused:
        update_destination("payments", config={"url": ""}, actor=ADMIN)
    assert "config.url" in refused.value.errors


def test_disable_and_describe(receiver):
    _webhook(receiver)
    update_destination("payments", enabled=False, description="paused for the migration", actor=ADMIN)
    row = get_destination("payments")
    assert (row["enabled"], row["description"]) == (False, "paused for the migration")


@pytest.mark.parametrize(
    "change",
    [
        lambda: update_destination("Webhook", enabled=False, actor=ADMIN),
        lambda: delete_destination("Webhook", actor=ADMIN),
    ],
    ids=["update", "delete"],
)
def test_environment_destinations_are_read_only_naming_the_variables(change):
    with pytest.raises(EnvironmentDestination, match="CERTCTL_WEBHOOK_URL"):
        change()


def test_an_unknown_destination_is_not_found():
    with pytest.raises(DestinationNotFound, match="no destination 'nowhere'"):
        update_destination("nowhere", enabled=False, actor=ADMIN)
    with pytest.raises(DestinationNotFound):
        send_test("nowhere", actor=ADMIN)


# --- delete ---------------------------------------------------------------------------------------------------


def _event_for(name):
    event, _ = create_event(type="ExpirationWarning", recipient="ops", message="m", destination=name)
    return event


def test_delete_without_events_removes_the_row_and_drops_it_from_routes(receiver):
    _webhook(receiver)
    route = Route.objects.create(name="team", position=1)
    route.destinations.add("payments")
    delete_destination("payments", actor=ADMIN)
    assert not Destination.objects.filter(name="payments").exists()
    assert not route.destinations.exists()
    detail = ConfigurationAction.objects.filter(action="delete").get().detail
    assert detail == {"routes": ["team"], "history_kept": False}


def test_delete_is_refused_while_events_are_unsent(receiver):
    _webhook(receiver)
    _event_for("payments")
    with pytest.raises(DestinationInUse, match="1 unsent"):
        delete_destination("payments", actor=ADMIN)
    assert get_destination("payments")


def test_delete_with_history_hides_the_row_and_a_new_create_revives_it(receiver):
    _webhook(receiver)
    event = _event_for("payments")
    type(event).objects.filter(id=event.id).update(status="sent", sent_at=event.created_at)
    delete_destination("payments", actor=ADMIN)
    assert Destination.objects.get(name="payments").deleted_at is not None
    assert "payments" not in [row["name"] for row in destination_list()]
    with pytest.raises(DestinationNotFound):
        get_destination("payments")
    create_destination(name="payments", channel="Slack", config={"webhook_url": receiver.url + "/s"}, actor=ADMIN)
    row = get_destination("payments")
    assert (row["channel"], row["secrets_set"]) == ("Slack", ["webhook_url"])


def test_a_revived_destination_starts_unpaused_with_its_breaker_closed(receiver):
    _webhook(receiver)
    event = _event_for("payments")
    type(event).objects.filter(id=event.id).update(status="sent", sent_at=event.created_at)
    pause_destination("payments", ADMIN)
    delete_destination("payments", actor=ADMIN)
    _webhook(receiver)
    _event_for("payments")

    passes.process_pending()

    assert [request.path for request in receiver.requests] == ["/hook"]
    assert {row["name"]: row["state"] for row in destination_states()}["payments"] == "closed"


# --- send a test ----------------------------------------------------------------------------------------------


def test_a_test_delivery_reaches_the_receiver_signed_and_stores_no_event(receiver):
    _webhook(receiver)
    outcome = send_test("payments", actor=ADMIN)
    assert (outcome.outcome, outcome.http_status, outcome.error) == ("ok", 200, "")
    (request,) = receiver.requests
    assert request.path == "/hook"
    assert "X-Certctl-Signature" in request.headers
    assert "Test message" in request.json()["message"]
    assert not NotificationEvent.objects.exists()
    assert ConfigurationAction.objects.filter(action="test").get().detail == {"outcome": "ok", "http_status": 200}


def test_a_failed_test_says_why_without_the_secret(receiver):
    _webhook(receiver)
    receiver.reply_with(Reply(status=401, body=f"bad signature for secret {SECRET}"))
    outcome = send_test("payments", actor=ADMIN)
    assert (outcome.outcome, outcome.http_status) == ("permanent", 401)
    assert "401" in outcome.error
    assert SECRET not in outcome.error


def test_an_environment_destination_can_be_tested(webhook):
    assert send_test("Webhook", actor=ADMIN).outcome == "ok"
    assert len(webhook.requests) == 1


def test_a_destination_that_cannot_deliver_is_reported_without_sending():
    outcome = send_test("Slack", actor=ADMIN)
    assert outcome.outcome == "permanent"
    assert "CERTCTL_SLACK_WEBHOOK_URL" in outcome.error
