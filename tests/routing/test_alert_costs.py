"""What an alert costs the database and how it holds its destinations: the statements of one alert (a count), and a
destination removed while an alert creates its event refused rather than hidden with the event pending."""
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.errors import DestinationInUse
from notifications.models import Destination, NotificationEvent
from notifications.operations import alerts, events
from notifications.operations.alerts import create_alert
from notifications.operations.destinations import delete_destination
from notifications.operations.events import create_event
from tests.routing.conftest import OPERATOR

ALERT = {"type": "ExpirationWarning", "message": "api.example.com expires in 7 days", "certificate_id": "mc-api"}


def statements_of_an_alert():
    create_alert(**ALERT, actor=OPERATOR)  # the routes are read (and cached) by the first
    with CaptureQueriesContext(connection) as captured:
        create_alert(**{**ALERT, "certificate_id": "mc-web"}, actor=OPERATOR)
    return [query["sql"].split()[0] for query in captured.captured_queries]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("names", [["team-a"], ["team-a", "team-b", "team-c"]])
def test_an_alert_costs_five_statements_whatever_its_destinations(route, names):
    route("all", names)
    # In one transaction: the destinations share-locked (with the configuration version), the events inserted; then
    # the workers kicked.
    assert statements_of_an_alert() == ["BEGIN", "SELECT", "INSERT", "COMMIT", "INSERT"]
    assert NotificationEvent.objects.count() == 2 * len(names)


def _waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cursor.fetchone()[0])


def an_alert():
    return create_alert(**ALERT, actor=OPERATOR)


def an_event():
    return create_event(**ALERT, destination="team-a", recipient="ops@example.com")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("module", "create"), [(alerts, an_alert), (events, an_event)], ids=["alert", "event"])
def test_a_destination_removed_while_an_event_is_created_for_it_is_refused_not_hidden(
    route, monkeypatch, module, create
):
    route("all", ["team-a"])
    create()
    # Delivered: a delete now would keep team-a, hidden, for the history that names it.
    NotificationEvent.objects.update(status="sent", sent_at=timezone.now())
    checked, go_on = threading.Event(), threading.Event()
    lock_destinations = module.lock_destinations

    def check_then_pause(names):
        found = lock_destinations(names)
        checked.set()
        go_on.wait(30)
        return found

    monkeypatch.setattr(module, "lock_destinations", check_then_pause)
    outcome = {}

    def run(what, action):
        try:
            outcome[what] = action()
        except Exception as exc:  # the assertions below say which was expected
            outcome[what] = exc
        finally:
            connection.close()

    creating = threading.Thread(target=run, args=("create", create))
    creating.start()
    assert checked.wait(30)
    delete = threading.Thread(target=run, args=("delete", lambda: delete_destination("team-a", actor=OPERATOR)))
    delete.start()
    # The delete either waits for the alert's lock on team-a, or (without one) removes team-a at once.
    deadline = time.monotonic() + 30
    while delete.is_alive() and not _waits_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    go_on.set()
    creating.join(30)
    delete.join(30)

    assert not isinstance(outcome["create"], Exception), outcome["create"]
    assert isinstance(outcome["delete"], DestinationInUse)
    assert Destination.objects.get(name="team-a").deleted_at is None
    assert NotificationEvent.objects.filter(destination="team-a", status="pending").count() == 1
