"""Alerts: one event per routed destination, all or none, deduplicated per destination; a route changed in another
process routes the next alert here."""
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from notifications.errors import InvalidInput, Unprocessable
from notifications.models import Destination, NotificationEvent, Route
from notifications.operations.alerts import create_alert, route_alert
from notifications.queries.routing import route_table
from tests.routing.conftest import OPERATOR

PROJECT = Path(__file__).resolve().parents[2]

ALERT = {
    "type": "ExpirationWarning", "message": "api.example.com expires in 7 days", "certificate_id": "mc-api-prod",
    "severity": "warning", "labels": {"team": "payments"},
}


def stored():
    return sorted(NotificationEvent.objects.values_list("destination", "channel", "recipient"))


@pytest.mark.django_db
def test_an_alert_creates_one_event_per_destination_with_its_channel(route):
    route("payments", ["team-a", "slack-edge"], match={"labels": {"team": "payments"}}, continue_matching=True)
    route("warnings", ["team-a", "Webhook"], match={"severities": ["warning"]})
    result = create_alert(**ALERT, actor=OPERATOR)
    assert result.routes == ["payments", "warnings"]
    # A route's destinations by name; the routes' in their order.
    assert [(event.destination, event.channel, created) for event, created in result.events] == [
        ("slack-edge", "Slack", True), ("team-a", "Webhook", True), ("Webhook", "Webhook", True),
    ]
    # Without a recipient each event names its destination.
    assert stored() == [
        ("Webhook", "Webhook", "Webhook"), ("slack-edge", "Slack", "slack-edge"), ("team-a", "Webhook", "team-a"),
    ]
    event = NotificationEvent.objects.get(destination="team-a")
    assert (event.type, event.certificate_id, event.severity, event.labels, event.status) == (
        "ExpirationWarning", "mc-api-prod", "warning", {"team": "payments"}, "pending",
    )


@pytest.mark.django_db
def test_a_given_recipient_goes_on_every_event(route):
    route("all", ["team-a", "team-b"])
    create_alert(**ALERT, recipient="#pki-alerts", actor=OPERATOR)
    assert {recipient for _, _, recipient in stored()} == {"#pki-alerts"}


@pytest.mark.django_db
def test_an_email_destination_without_recipients_needs_the_alerts_recipient(route):
    route("all", ["team-a", "Email"])
    with pytest.raises(Unprocessable, match="Email destination 'Email', which has no recipients: .*CERTCTL_SMTP_RECIP"):
        create_alert(**ALERT, actor=OPERATOR)
    assert stored() == []
    create_alert(**ALERT, recipient="pki@example.com", actor=OPERATOR)
    assert len(stored()) == 2


@pytest.mark.django_db
def test_an_alert_without_recipient_goes_to_the_email_destinations_recipients(route, settings):
    Destination.objects.create(
        name="pki-mail", channel="Email", config={"host": "127.0.0.1", "from_address": "certctl@example.com",
                                                  "recipients": "pki@example.com, oncall@example.com"},
    )
    settings.CERTCTL_SMTP_RECIPIENTS = "ops@example.com"
    route("all", ["pki-mail", "Email", "team-a"])
    create_alert(**ALERT, actor=OPERATOR)
    assert stored() == [
        ("Email", "Email", "ops@example.com"),
        ("pki-mail", "Email", "pki@example.com, oncall@example.com"),
        ("team-a", "Webhook", "team-a"),
    ]
    # A recipient given goes everywhere, the destinations' recipients aside.
    create_alert(**{**ALERT, "certificate_id": "mc-other"}, recipient="lead@example.com", actor=OPERATOR)
    assert NotificationEvent.objects.filter(recipient="lead@example.com").count() == 3


@pytest.mark.django_db
def test_environment_recipients_that_are_no_addresses_refuse_the_alert(route, settings):
    settings.CERTCTL_SMTP_RECIPIENTS = "ops at example"
    route("all", ["Email"])
    with pytest.raises(Unprocessable, match="CERTCTL_SMTP_RECIPIENTS of the Email destination 'Email'"):
        create_alert(**ALERT, actor=OPERATOR)
    assert stored() == []


@pytest.mark.django_db
def test_the_dedup_key_is_per_destination(route):
    payments = route("payments", ["team-a"], match={"labels": {"team": "payments"}})
    first = create_alert(**ALERT, dedup_key="mc-api-prod-7d", actor=OPERATOR)
    assert [created for _, created in first.events] == [True]
    again = create_alert(**ALERT, dedup_key="mc-api-prod-7d", actor=OPERATOR)
    assert [(event.id, created) for event, created in again.events] == [(first.events[0][0].id, False)]
    from notifications.operations.routes import update_route

    update_route(payments.id, destinations=["team-a", "team-b"], actor=OPERATOR)
    widened = create_alert(**ALERT, dedup_key="mc-api-prod-7d", actor=OPERATOR)
    assert [(event.destination, created) for event, created in widened.events] == [
        ("team-a", False), ("team-b", True),
    ]
    assert NotificationEvent.objects.count() == 2


@pytest.mark.django_db
def test_a_destination_that_cannot_take_its_event_refuses_the_whole_alert(route):
    route("all", ["team-a", "team-b", "team-c"])
    route_table()  # read while team-c is enabled
    # Disabled behind the cache's back (no version bump), as by a change committed after this process read the
    # routes: the third create is refused, and the two before it go with it.
    Destination.objects.filter(name="team-c").update(enabled=False)
    with pytest.raises(Unprocessable, match="destination 'team-c' is disabled"):
        create_alert(**ALERT, actor=OPERATOR)
    assert NotificationEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_alert_with_nowhere_to_go_creates_nothing(route):
    route("edge", ["team-a"], match={"labels": {"team": "edge"}})
    with pytest.raises(Unprocessable, match="no route matched and there is no default route"):
        create_alert(**ALERT, actor=OPERATOR)
    assert NotificationEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "Expiry"}, "type"),
        ({"severity": "high"}, "severity"),
        ({"message": " "}, "message"),
        ({"labels": {"team": 1}}, "labels"),
        ({"recipient": "a\nb"}, "recipient"),
        ({"dedup_key": "k" * 256}, "dedup_key"),
    ],
)
def test_bad_input_is_refused_before_routing(route, fields, field):
    route("all", ["team-a"])
    with pytest.raises(InvalidInput) as refused:
        route_alert(**{**ALERT, **fields})
    assert not isinstance(refused.value, Unprocessable)
    assert field in refused.value.errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_route_changed_in_another_process_routes_the_next_alert_here(route):
    payments = route("payments", ["team-a"], match={"labels": {"team": "payments"}})
    first = create_alert(**ALERT, actor=OPERATOR)  # this process now holds the routes in its cache
    assert [event.destination for event, _ in first.events] == ["team-a"]

    database = connection.settings_dict
    login = quote(database["USER"]) + (f":{quote(database['PASSWORD'])}" if database["PASSWORD"] else "")
    other_worker = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from notifications.actors import Actor; from notifications.operations.routes import update_route; "
         f"update_route({payments.id}, destinations=['team-b'], actor=Actor('bob', 'cli'))"],
        cwd=PROJECT, capture_output=True, text=True, timeout=60,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "certctl.settings",
            "SECRET_KEY": "other-worker-test-key",
            "DATABASE_URL": f"postgres://{login}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        },
    )
    assert other_worker.returncode == 0, other_worker.stderr
    assert list(Route.objects.get().destinations.values_list("name", flat=True)) == ["team-b"]

    second = create_alert(**ALERT, actor=OPERATOR)
    assert [event.destination for event, _ in second.events] == ["team-b"]


@pytest.mark.django_db
@pytest.mark.parametrize("removed", [False, True], ids=["rerouted", "rerouted-and-removed"])
def test_an_alert_follows_routes_changed_since_this_process_read_them(route, removed):
    from notifications.operations.destinations import delete_destination
    from notifications.operations.routes import update_route

    payments = route("payments", ["team-a"])
    route_table()  # this process holds the routes to team-a
    update_route(payments.id, destinations=["team-b"], actor=OPERATOR)
    if removed:
        delete_destination("team-a", actor=OPERATOR)
    result = create_alert(**ALERT, actor=OPERATOR)
    assert [event.destination for event, _ in result.events] == ["team-b"]
    assert stored() == [("team-b", "Webhook", "team-b")]
