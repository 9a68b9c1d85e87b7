"""`notifications routes list|test` and `notifications alert`."""
import json

import pytest

from notifications.actors import Actor
from notifications.models import Destination, NotificationEvent
from notifications.operations.routes import create_route
from tests.cli.conftest import cli, cli_error

pytestmark = pytest.mark.django_db
ALICE = Actor("alice", "api")


@pytest.fixture
def routes(db: None) -> None:
    """payments-hook takes team=payments alerts (and keeps matching), critical ones also go to oncall-hook; the
    default route sends the rest to ops-hook."""
    Destination.objects.ensure_environment()
    for name in ("payments-hook", "oncall-hook", "ops-hook"):
        Destination.objects.create(name=name, channel="Webhook", config={"url": f"http://127.0.0.1:9/{name}"})
    create_route(name="payments", match={"labels": {"team": "payments"}}, destinations=["payments-hook"],
                 continue_matching=True, actor=ALICE)
    create_route(name="critical", match={"severities": ["critical"], "certificate_ids": ["mc-*"]},
                 destinations=["oncall-hook"], actor=ALICE)
    create_route(name="everything-else", match={}, destinations=["ops-hook"], is_default=True, actor=ALICE)


def test_routes_list_in_evaluation_order(routes: None) -> None:
    out = cli("routes", "list").out
    lines = out.splitlines()[2:]
    assert [line.split()[1] for line in lines] == ["payments", "critical", "everything-else"]
    assert "labels=team=payments" in lines[0]
    assert "payments-hook" in lines[0]
    assert "severities=critical certificate_ids=mc-*" in lines[1]
    assert lines[2].startswith("default")
    assert "every alert" in lines[2]
    assert "ops-hook" in lines[2]
    listed = json.loads(cli("routes", "list", "--json").out)
    assert [(r["name"], r["destinations"]) for r in listed["data"]] == [
        ("payments", ["payments-hook"]), ("critical", ["oncall-hook"]), ("everything-else", ["ops-hook"]),
    ]


def test_routes_list_without_routes_says_so(db: None) -> None:
    assert "no routes yet" in cli("routes", "list").out


def test_routes_test_prints_destinations_and_routes_and_creates_nothing(routes: None) -> None:
    out = cli("routes", "test", "--type", "revocation", "--severity", "critical", "--certificate-id", "mc-api",
              "--label", "team=payments").out
    assert out.splitlines()[0] == "routes matched: payments, critical"
    assert "payments-hook" in out
    assert "oncall-hook" in out
    assert "ops-hook" not in out
    default = json.loads(cli("routes", "test", "--type", "Revocation", "--json").out)
    assert default == {"destinations": [{"name": "ops-hook", "channel": "Webhook"}], "routes": ["everything-else"]}
    assert not NotificationEvent.objects.exists()


def test_routes_test_with_nowhere_to_go_exits_1_with_the_reason(db: None) -> None:
    run = cli_error("routes", "test", "--type", "Revocation")
    assert run.returncode == 1
    assert run.message.startswith("no route matched and there is no default route")


def test_bad_labels_are_usage_errors(routes: None) -> None:
    no_equals = cli_error("routes", "test", "--type", "Revocation", "--label", "team")
    assert (no_equals.returncode, no_equals.message) == (
        2, "--label 'team': expected KEY=VALUE, e.g. --label team=payments"
    )
    bad_key = cli_error("alert", "--type", "Revocation", "--message", "m", "--label", "bad key=x")
    assert bad_key.returncode == 2
    assert bad_key.message.startswith("invalid input: --label label 'bad key': keys are")


def test_alert_creates_one_event_per_destination_and_dedups(routes: None) -> None:
    args = ("alert", "--type", "Revocation", "--message", "mc-api revoked", "--severity", "critical",
            "--certificate-id", "mc-api", "--label", "team=payments", "--label", "env=prod", "--dedup-key", "r-1")
    out = cli(*args).out
    assert "alert routed by payments, critical: 2 notification(s) created" in out
    events = NotificationEvent.objects.order_by("destination")
    assert [(e.destination, e.labels, e.recipient) for e in events] == [
        ("oncall-hook", {"team": "payments", "env": "prod"}, "oncall-hook"),
        ("payments-hook", {"team": "payments", "env": "prod"}, "payments-hook"),
    ]
    for event in events:
        assert event.id in out
    again = json.loads(cli(*args, "--json").out)
    assert [e["created"] for e in again["events"]] == [False, False]
    assert again["routes"] == ["payments", "critical"]
    assert NotificationEvent.objects.count() == 2


def test_alert_with_nowhere_to_go_creates_nothing_and_exits_1(db: None) -> None:
    run = cli_error("alert", "--type", "Revocation", "--message", "m")
    assert run.returncode == 1
    assert "no route matched and there is no default route" in run.message
    assert not NotificationEvent.objects.exists()
