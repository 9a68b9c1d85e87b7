"""Routing semantics (docs/DESIGN.md, "Routing"): which destinations an alert reaches, and why none."""
import pytest

from notifications.errors import InvalidInput, Unprocessable
from notifications.models import Destination, Route
from notifications.queries.routing import Alert, evaluate

pytestmark = pytest.mark.django_db

EXPIRY = Alert(type="ExpirationWarning", severity="warning", certificate_id="mc-api-prod", labels={"team": "payments"})


def names(routing):
    return [name for name, _ in routing.destinations]


def test_a_route_without_criteria_takes_every_alert(route):
    route("all", ["team-a"])
    routing = evaluate(EXPIRY)
    assert routing.destinations == [("team-a", "Webhook")]
    assert routing.routes == ["all"]


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"types": ["ExpirationWarning", "Revocation"]}, True),
        ({"types": ["Revocation"]}, False),
        ({"severities": ["warning"]}, True),
        ({"severities": ["critical"]}, False),
        ({"certificate_ids": ["mc-api-*"]}, True),
        ({"certificate_ids": ["mc-edge-*", "mc-*-prod"]}, True),
        ({"certificate_ids": ["MC-API-*"]}, False),  # globs are case-sensitive
        ({"certificate_ids": ["mc-api"]}, False),
        ({"labels": {"team": "payments"}}, True),
        ({"labels": {"team": "pay*"}}, True),
        ({"labels": {"team": "edge"}}, False),
        ({"labels": {"env": "*"}}, False),  # the key must be present
        ({"labels": {"team": "payments", "env": "prod"}}, False),  # every key
        ({"types": ["ExpirationWarning"], "severities": ["critical"]}, False),  # every criterion
        ({"types": ["ExpirationWarning"], "severities": ["warning"], "certificate_ids": ["*prod"],
          "labels": {"team": "payments"}}, True),
    ],
)
def test_a_route_matches_when_every_criterion_it_sets_matches(route, match, expected):
    route("rule", ["team-a"], match=match)
    route("fallback", ["team-b"], is_default=True)
    assert names(evaluate(EXPIRY)) == (["team-a"] if expected else ["team-b"])


def test_an_alert_without_severity_or_certificate_matches_only_routes_that_do_not_ask_for_them(route):
    route("critical", ["team-a"], match={"severities": ["critical", "warning", "informational"]})
    route("certificates", ["team-b"], match={"certificate_ids": ["*"]})
    route("rest", ["team-c"])
    assert names(evaluate(Alert(type="Revocation"))) == ["team-c"]


def test_the_first_match_ends_the_evaluation_unless_it_continues(route):
    route("payments", ["team-a"], match={"labels": {"team": "payments"}}, continue_matching=True)
    route("warnings", ["team-b", "team-a"], match={"severities": ["warning"]})
    route("everything", ["team-c"])
    routing = evaluate(EXPIRY)
    assert names(routing) == ["team-a", "team-b"]  # team-a once, in order of first appearance
    assert routing.routes == ["payments", "warnings"]


def test_routes_are_tried_by_position(route):
    route("second", ["team-b"])
    route("first", ["team-a"], position=0)
    assert evaluate(EXPIRY).routes == ["first"]


def test_the_default_route_is_used_only_when_no_other_matched(route):
    route("fallback", ["team-c"], is_default=True, position=0)
    route("payments", ["team-a"], match={"labels": {"team": "payments"}}, continue_matching=True)
    assert evaluate(EXPIRY).routes == ["payments"]
    routing = evaluate(Alert(type="Revocation", labels={"team": "edge"}))
    assert routing.routes == ["fallback"]
    assert names(routing) == ["team-c"]


def test_disabled_routes_and_disabled_or_removed_destinations_are_skipped(route):
    route("off", ["team-a"], enabled=False)
    route("mixed", ["team-a", "team-b", "team-c"])
    Destination.objects.filter(name="team-a").update(enabled=False)
    Destination.objects.filter(name="team-b").update(deleted_at="2026-01-01T00:00Z")
    route("touch", ["team-c"], enabled=False)  # bumps the configuration version
    routing = evaluate(EXPIRY)
    assert routing.routes == ["mixed"]
    assert names(routing) == ["team-c"]


def test_a_disabled_default_route_is_no_default(route):
    route("fallback", ["team-c"], is_default=True, enabled=False)
    with pytest.raises(Unprocessable, match="no route matched and there is no default route"):
        evaluate(EXPIRY)


def test_without_a_match_or_a_default_the_alert_is_refused_saying_so(route):
    route("edge", ["team-a"], match={"labels": {"team": "edge"}})
    with pytest.raises(Unprocessable) as refused:
        evaluate(EXPIRY)
    assert "no route matched and there is no default route" in refused.value.errors["routes"]


def test_matching_routes_without_an_enabled_destination_refuse_the_alert_naming_them(route):
    route("payments", ["team-a"], match={"labels": {"team": "payments"}}, continue_matching=True)
    route("warnings", ["team-b"], match={"severities": ["warning"]})
    route("fallback", ["team-c"], is_default=True)
    Destination.objects.filter(name__in=["team-a", "team-b"]).update(enabled=False)
    route("touch", ["team-c"], enabled=False)
    with pytest.raises(Unprocessable) as refused:
        evaluate(EXPIRY)
    assert refused.value.errors["routes"].startswith(
        "the matching routes (payments, warnings) have no enabled destination"
    )


def test_a_change_of_routes_is_seen_by_the_next_evaluation(route):
    first = route("all", ["team-a"])
    assert names(evaluate(EXPIRY)) == ["team-a"]
    from notifications.operations.routes import update_route
    from tests.routing.conftest import OPERATOR

    update_route(first.id, destinations=["team-b"], actor=OPERATOR)
    assert names(evaluate(EXPIRY)) == ["team-b"]


def test_the_table_is_read_once_per_configuration_version(route, django_assert_num_queries):
    route("all", ["team-a"])
    evaluate(EXPIRY)
    with django_assert_num_queries(1):  # the version only
        evaluate(EXPIRY)
    Route.objects.update(enabled=True)  # a change behind the operations' back is not seen: they bump the version
    with django_assert_num_queries(1):
        evaluate(EXPIRY)


@pytest.mark.parametrize(
    ("match", "field", "text"),
    [
        ("types", "match", "must be an object"),
        ({"type": ["Revocation"]}, "match.type", "unknown criterion"),
        ({"types": "Revocation"}, "match.types", "must be a list of types"),
        ({"types": ["Expiry"]}, "match.types", "unknown type 'Expiry'"),
        ({"severities": ["high"]}, "match.severities", "unknown severity 'high'"),
        ({"certificate_ids": [7]}, "match.certificate_ids", "is not a string"),
        ({"certificate_ids": ["a" * 256]}, "match.certificate_ids", "1 to 255 characters"),
        ({"certificate_ids": [f"mc-{n}" for n in range(101)]}, "match.certificate_ids", "at most 100"),
        ({"labels": ["team"]}, "match.labels", "must be an object"),
        ({"labels": {"team": 7}}, "match.labels", "must be a string"),
        ({"labels": {"bad key": "x"}}, "match.labels", "keys are 1 to 63"),
        ({"labels": {"team": ""}}, "match.labels", "needs a value or glob"),
        ({"labels": {f"k{n}": "v" for n in range(21)}}, "match.labels", "at most 20"),
        ({"severities": 0}, "match.severities", "must be a list"),
    ],
)
def test_a_bad_match_is_refused_naming_the_criterion(route, match, field, text):
    with pytest.raises(InvalidInput) as refused:
        route("bad", ["team-a"], match=match or {"x": 1})
    assert text in refused.value.errors[field]
    assert not Route.objects.exists()
