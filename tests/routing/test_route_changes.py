"""Creating, changing, reordering and deleting routes: positions, refusals, audit rows, the configuration version."""
import pytest

from notifications.actors import Actor
from notifications.errors import InvalidInput, RouteNotFound, Unprocessable
from notifications.models import ConfigurationAction, ConfigVersion, Route
from notifications.operations.routes import create_route, delete_route, reorder_routes, update_route
from tests.routing.conftest import OPERATOR

pytestmark = pytest.mark.django_db


def order():
    return list(Route.objects.filter(is_default=False).order_by("position", "id").values_list("name", "position"))


def test_a_new_route_goes_last_or_where_asked(route):
    route("one")
    route("two")
    route("zero", position=0)
    route("one-and-a-half", position=2)
    route("far", position=99)
    assert order() == [("zero", 0), ("one", 1), ("one-and-a-half", 2), ("two", 3), ("far", 4)]


def test_a_create_is_audited_with_its_actor_and_bumps_the_version(route):
    before = ConfigVersion.objects.current()
    made = route("payments", ["team-a", "team-b"], match={"labels": {"team": "payments"}, "types": []})
    assert ConfigVersion.objects.current() > before
    assert made.match == {"labels": {"team": "payments"}}  # empty criteria are left out
    assert sorted(made.destinations.values_list("name", flat=True)) == ["team-a", "team-b"]
    action = ConfigurationAction.objects.get()
    assert (action.target_kind, action.target, action.action, action.actor, action.source) == (
        "route", "payments", "create", "alice", "api",
    )


def test_unknown_destinations_are_refused_naming_them(route):
    with pytest.raises(Unprocessable) as refused:
        route("payments", ["team-a", "nowhere", "gone"])
    assert "unknown destinations 'nowhere', 'gone'" in refused.value.errors["destinations"]
    assert not Route.objects.exists()
    assert not ConfigurationAction.objects.exists()


def test_environment_destinations_can_be_routed_to(route):
    made = route("all", ["Webhook", "Slack"])
    assert sorted(made.destinations.values_list("name", flat=True)) == ["Slack", "Webhook"]


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"name": " "}, "name", "must not be empty"),
        ({"name": "a\nb"}, "name", "one line"),
        ({"name": "x" * 101}, "name", "at most 100"),
        ({"destinations": "team-a"}, "destinations", "list of destination names"),
        ({"destinations": ["team-a"] * 101}, "destinations", "at most 100"),
        ({"position": -1}, "position", "whole number"),
        ({"position": True}, "position", "whole number"),
        ({"enabled": "yes"}, "enabled", "true or false"),
        ({"is_default": True, "match": {"types": ["Revocation"]}}, "match", "leave its match empty"),
    ],
)
def test_bad_fields_are_refused_naming_them(destinations, fields, field, text):
    arguments = {"name": "r", "match": {}, "destinations": ["team-a"], **fields}
    with pytest.raises(InvalidInput) as refused:
        create_route(**arguments, actor=OPERATOR)
    assert text in refused.value.errors[field]


def test_names_are_unique_and_there_is_one_default(route):
    route("payments")
    route("fallback", is_default=True)
    with pytest.raises(Unprocessable, match="a route named 'payments' exists already"):
        route("payments")
    with pytest.raises(Unprocessable, match="route 'fallback' is the default route already"):
        route("second-fallback", is_default=True)
    edge = route("edge")
    with pytest.raises(Unprocessable, match="exists already"):
        update_route(edge.id, name="payments", actor=OPERATOR)
    with pytest.raises(Unprocessable, match="is the default route already"):
        update_route(edge.id, is_default=True, actor=OPERATOR)


def test_an_update_changes_the_fields_given_and_audits_their_names(route):
    made = route("payments", ["team-a"], match={"types": ["Revocation"]})
    route("edge")
    updated = update_route(
        made.id, name="payments-prod", destinations=["team-b"], continue_matching=True, position=1,
        actor=Actor("bob", "cli"),
    )
    assert (updated.name, updated.match, updated.continue_matching) == (
        "payments-prod", {"types": ["Revocation"]}, True,
    )
    assert list(updated.destinations.values_list("name", flat=True)) == ["team-b"]
    assert order() == [("edge", 0), ("payments-prod", 1)]
    action = ConfigurationAction.objects.filter(action="update").get()
    assert (action.target, action.actor, action.source) == ("payments-prod", "bob", "cli")
    assert action.detail == {
        "fields": ["name", "continue_matching", "destinations", "position"], "previous_name": "payments",
    }


def test_an_update_that_changes_nothing_is_not_audited(route):
    made = route("payments", ["team-a"])
    version = ConfigVersion.objects.current()
    update_route(made.id, name="payments", destinations=["team-a"], enabled=True, actor=OPERATOR)
    assert not ConfigurationAction.objects.filter(action="update").exists()
    assert ConfigVersion.objects.current() == version  # rolled back with the rest


def test_becoming_the_default_leaves_the_order_and_back_goes_last(route):
    first = route("first")
    route("second")
    update_route(first.id, is_default=True, actor=OPERATOR)
    assert order() == [("second", 0)]
    update_route(first.id, is_default=False, actor=OPERATOR)
    assert order() == [("second", 0), ("first", 1)]


def test_delete_closes_up_the_order_and_is_audited(route):
    route("one")
    two = route("two")
    route("three")
    delete_route(two.id, actor=OPERATOR)
    assert order() == [("one", 0), ("three", 1)]
    assert ConfigurationAction.objects.filter(action="delete", target="two", actor="alice").exists()
    with pytest.raises(RouteNotFound, match=f"route {two.id} not found"):
        delete_route(two.id, actor=OPERATOR)
    with pytest.raises(RouteNotFound):
        update_route(two.id, enabled=False, actor=OPERATOR)


def test_reorder_takes_every_route_but_the_default_exactly_once(route):
    one, two, three = route("one"), route("two"), route("three")
    fallback = route("fallback", is_default=True)
    reorder_routes([three.id, one.id, two.id], actor=OPERATOR)
    assert order() == [("three", 0), ("one", 1), ("two", 2)]
    action = ConfigurationAction.objects.get(action="reorder")
    assert action.detail == {"order": ["three", "one", "two"]}
    with pytest.raises(Unprocessable, match=f"lists route {one.id} more than once"):
        reorder_routes([one.id, one.id, two.id, three.id], actor=OPERATOR)
    with pytest.raises(Unprocessable, match=f"leaves out route {three.id}"):
        reorder_routes([one.id, two.id], actor=OPERATOR)
    with pytest.raises(Unprocessable, match="lists unknown route 999999"):
        reorder_routes([one.id, two.id, three.id, 999999], actor=OPERATOR)
    with pytest.raises(Unprocessable, match="lists the default route"):
        reorder_routes([one.id, two.id, three.id, fallback.id], actor=OPERATOR)
    with pytest.raises(InvalidInput, match="must be a list of route ids"):
        reorder_routes(["one"], actor=OPERATOR)  # type: ignore[list-item]
    assert order() == [("three", 0), ("one", 1), ("two", 2)]
