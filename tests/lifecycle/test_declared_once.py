"""One SQL truth per state change: releasing a lease and a requeue's reset are declared once (notifications.models),
and every statement that makes them, the ORM's and PostgreSQL's alike, is made from the declaration. A column added
to a declaration reaches every statement on both backends."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.engine import claims
from notifications.engine.recording import record_results
from notifications.engine.sender import Delivery
from notifications.models import LEASE_RELEASED, REQUEUE_RESET, set_clause
from notifications.notifiers import DeliveryResult
from notifications.operations.events import requeue_event, requeue_events
from tests.lifecycle.conftest import OPERATOR, T0, put_in_state, reload

pytestmark = pytest.mark.django_db


@pytest.fixture(params=["as on this database", "as on SQLite"])
def backend(request, monkeypatch):
    """Each statement as this database runs it and, on PostgreSQL too, as SQLite runs it (the ORM's statements)."""
    if request.param == "as on SQLite":
        monkeypatch.setattr(connection, "vendor", "sqlite")


@pytest.fixture
def severity_in_declaration(monkeypatch):
    """A column the declarations do not hold today, added to both of them."""
    monkeypatch.setitem(LEASE_RELEASED, "severity", None)
    monkeypatch.setitem(REQUEUE_RESET, "severity", None)


def test_a_column_added_to_the_requeue_reset_is_reset_by_every_requeue(backend, monkeypatch, make_event):
    monkeypatch.setitem(REQUEUE_RESET, "severity", None)
    single, bulk = make_event(severity="critical"), make_event(severity="critical")
    for event in (single, bulk):
        put_in_state(event, "dead")

    requeue_event(single.id, OPERATOR)
    assert requeue_events(OPERATOR, ids=[bulk.id]).requeued == 1

    assert [(reload(e).status, reload(e).severity) for e in (single, bulk)] == [("pending", None), ("pending", None)]


def test_a_column_added_to_the_lease_release_is_released_by_every_statement_that_releases(
    backend, severity_in_declaration, make_event
):
    given_back, recorded, requeued = (make_event(severity="critical") for _ in range(3))
    put_in_state(requeued, "dead")
    claimed = {event.id: event for event in claims.claim_due_events("pending", now=T0)}

    assert claims.release_claims([claimed[given_back.id]]) == 1
    [status] = record_results([Delivery(claimed[recorded.id], DeliveryResult.success(http_status=200), T0, 5, T0)])
    requeue_event(requeued.id, OPERATOR)

    assert status == "sent"
    assert [reload(e).severity for e in (given_back, recorded, requeued)] == [None, None, None]


@pytest.mark.postgres
def test_postgresqls_requeue_and_apply_set_exactly_the_declared_columns(make_event):
    if connection.vendor != "postgresql":
        pytest.skip("the set-based statements are PostgreSQL's")
    dead = make_event()
    make_event()
    put_in_state(dead, "dead")
    [claimed] = claims.claim_due_events("pending", now=T0)

    with CaptureQueriesContext(connection) as queries:
        requeue_events(OPERATOR, ids=[dead.id])
        record_results([Delivery(claimed, DeliveryResult.success(http_status=200), T0, 5, T0)])

    requeue_sql = next(q["sql"] for q in queries.captured_queries if "ctid = ANY" in q["sql"])
    requeue_set = re.search(r"UPDATE \S+ SET (.*?) WHERE ctid", requeue_sql, re.S)
    assert requeue_set is not None
    assigned = set(re.findall(r'"(\w+)" = ', requeue_set.group(1)))
    assert assigned == {*REQUEUE_RESET, *LEASE_RELEASED, "updated_at"}

    apply_sql = next(q["sql"] for q in queries.captured_queries if "FROM unnest(" in q["sql"])
    assert set(re.findall(r'"(\w+)" = NULL', apply_sql)) == set(LEASE_RELEASED)


def test_a_declaration_naming_no_column_of_the_events_table_is_refused_when_its_statement_is_made():
    with pytest.raises(ValueError, match="attempts is not a column of notification_events"):
        set_clause({"attempts": None})
