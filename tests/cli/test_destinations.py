"""`notifications destinations list|add|edit|test|pause|resume|remove`: audited as the OS user with source cli, and
never printing a secret."""
import getpass
import io
import itertools
import json
import string

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from notifications.actors import Actor
from notifications.cli.common import operator
from notifications.engine import passes
from notifications.mcp import answers
from notifications.models import ConfigurationAction, Destination, NotificationEvent
from notifications.operations.events import create_event
from notifications.operations.routes import create_route
from tests.cli.conftest import cli, cli_error
from tests.receivers import Receiver, Reply

pytestmark = pytest.mark.django_db
SECRET = "sig-secret-5e0c2a9d41"


def actions() -> list[tuple[str, str, str, str, str]]:
    rows = ConfigurationAction.objects.order_by("id")
    return [(a.target, a.action, a.actor, a.source, ",".join(a.detail.get("fields", []))) for a in rows]


def add_webhook(receiver: Receiver, name: str = "payments", *extra: str) -> str:
    return cli(
        "destinations", "add", name, "--channel", "webhook", "--set", f"url={receiver.url}/hook",
        "--set", f"secret={SECRET}", *extra,
    ).out


def test_add_stores_the_fields_seals_the_secrets_and_prints_only_their_names(receiver: Receiver) -> None:
    out = add_webhook(receiver, "payments", "--description", "payments team")
    assert "created destination payments (Webhook)" in out
    assert "Secrets set" in out
    assert "url, secret" in out
    assert SECRET not in out
    assert receiver.url not in out
    stored = Destination.objects.get(name="payments")
    assert (stored.channel, stored.config, stored.description, stored.enabled) == ("Webhook", {}, "payments team", True)
    assert SECRET not in stored.sealed_secrets
    assert actions() == [("payments", "create", operator().name, "cli", "description,secret,url")]


def test_add_warns_that_set_leaves_a_secret_in_the_history(receiver: Receiver) -> None:
    run = cli("destinations", "add", "payments", "--channel", "Webhook", "--set", f"url={receiver.url}/hook")
    assert "--set url=… leaves a secret in your shell history" in run.err
    assert receiver.url not in run.err


def test_secrets_from_the_environment_and_from_a_prompt(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_URL", receiver.url + "/hook")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    asked: list[str] = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: asked.append(prompt) or SECRET)
    run = cli("destinations", "add", "edge", "--channel", "Webhook", "--set-from-env", "url=HOOK_URL",
              "--prompt", "secret")
    assert asked == ["secret (not echoed): "]
    assert run.err == ""
    assert SECRET not in run.out
    assert cli("destinations", "test", "edge").out.startswith("test message through edge: ok, HTTP 200")
    assert receiver.requests[-1].path == "/hook"
    assert "webhook-signature" in {name.lower() for name in receiver.requests[-1].headers}


def test_a_prompt_without_a_terminal_is_refused(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    run = cli_error("destinations", "add", "edge", "--channel", "Webhook", "--prompt", "secret")
    assert run.returncode == 2
    assert "no terminal to ask on; give the value with --set-from-env secret=ENVVAR" in run.message


def test_bad_input_names_the_option_and_the_problem(receiver: Receiver, db: None) -> None:
    unset = cli_error("destinations", "add", "edge", "--channel", "Webhook", "--set-from-env", "url=NOT_SET_HERE_X")
    assert (unset.returncode, unset.message) == (
        2, "--set-from-env url=NOT_SET_HERE_X: the environment variable NOT_SET_HERE_X is not set"
    )
    no_equals = cli_error("destinations", "add", "edge", "--channel", "Webhook", "--set", "url")
    assert no_equals.returncode == 2
    assert "expected FIELD=VALUE" in no_equals.message
    port = cli_error("destinations", "add", "mail", "--channel", "Email", "--set", "port=twenty-five")
    assert (port.returncode, port.message) == (2, "--set port: 'twenty-five' is not a whole number")
    bad = cli_error("destinations", "add", "bad name!", "--channel", "Slack", "--set", "colour=red")
    assert bad.returncode == 2
    assert bad.message.startswith("invalid destination: NAME: must be")
    missing = cli_error("destinations", "add", "edge", "--channel", "Slack", "--set", "colour=red")
    assert "field colour: unknown field for the Slack channel" in missing.message
    assert "field webhook_url: required for the Slack channel" in missing.message
    assert missing.message.endswith("nothing was created")
    assert not Destination.objects.filter(name="edge").exists()
    add_webhook(receiver, "edge")
    taken = cli_error("destinations", "add", "edge", "--channel", "Slack", "--set", f"webhook_url={receiver.url}/x")
    assert taken.returncode == 1
    assert "destination 'edge' already exists" in taken.message


def test_edit_changes_what_is_given_and_keeps_the_rest(receiver: Receiver) -> None:
    add_webhook(receiver)
    out = cli("destinations", "edit", "payments", "--description", "team P", "--disable").out
    assert "changed destination payments" in out
    stored = Destination.objects.get(name="payments")
    assert (stored.description, stored.enabled) == ("team P", False)
    assert "nothing to change" in cli("destinations", "edit", "payments", "--description", "team P").out
    cli("destinations", "edit", "payments", "--set", "secret=", "--enable")
    listed = json.loads(cli("destinations", "list", "--json").out)
    row = next(d for d in listed["data"] if d["name"] == "payments")
    assert (row["secrets_set"], row["enabled"]) == (["url"], True)
    assert [(a[1], a[4]) for a in actions()] == [
        ("create", "secret,url"), ("update", "enabled,description"), ("update", "secret,enabled"),
    ]


def test_environment_destinations_are_read_only_here(webhook: Receiver) -> None:
    run = cli_error("destinations", "edit", "Webhook", "--set", "url=https://elsewhere.example.com/x")
    assert run.returncode == 1
    assert "defined by environment variables" in run.message
    assert "CERTCTL_WEBHOOK_URL" in run.message
    assert cli_error("destinations", "remove", "Webhook").returncode == 1
    assert cli("destinations", "test", "Webhook").out.startswith("test message through Webhook: ok")


def test_unknown_destinations_exit_1_with_a_hint(db: None) -> None:
    for action in ("edit", "test", "pause", "resume", "remove"):
        run = cli_error("destinations", action, "nowhere")
        assert run.returncode == 1
        assert run.message == "no destination 'nowhere'; list them with `manage.py notifications destinations list`"


def test_list_shows_every_destination_with_its_state(receiver: Receiver, settings: pytest.FixtureRequest) -> None:
    add_webhook(receiver)
    out = cli("destinations", "list").out
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(lines) == {"Email", "Webhook", "Slack", "Teams", "PagerDuty", "OpsGenie", "payments"}
    assert "stored" in lines["payments"]
    assert "closed" in lines["payments"]
    assert "url, secret" in lines["payments"]
    assert "environment" in lines["Slack"]
    assert "no: " in lines["Slack"]
    assert SECRET not in out
    listed = json.loads(cli("destinations", "list", "--json").out)
    assert listed["total"] == 7
    assert next(d for d in listed["data"] if d["name"] == "payments")["config"] == {}


def test_a_failed_test_exits_1_with_the_redacted_error(receiver: Receiver) -> None:
    add_webhook(receiver)
    receiver.reply_with(Reply(status=400, body=f"bad signature, secret was {SECRET}"))
    run = cli_error("destinations", "test", "payments")
    assert run.returncode == 1
    assert run.message.startswith("test message through payments: permanent, HTTP 400")
    assert SECRET not in run.message
    assert actions()[-1][:4] == ("payments", "test", operator().name, "cli")


def test_pause_holds_a_destination_and_resume_releases_it(receiver: Receiver) -> None:
    add_webhook(receiver)
    assert "payments paused" in cli("destinations", "pause", "payments").out
    assert "already paused" in cli("destinations", "pause", "payments").out
    event, _ = create_event(type="ExpirationWarning", destination="payments", recipient="ops", message="m")
    passes.process_pending()
    assert NotificationEvent.objects.get(id=event.id).status == "pending"
    assert "paused" in cli("destinations", "list").out
    assert "payments resumed" in cli("destinations", "resume", "payments").out
    assert "was not paused" in cli("destinations", "resume", "payments").out
    passes.process_pending()
    assert NotificationEvent.objects.get(id=event.id).status == "sent"
    assert [a[1:4] for a in actions()[1:]] == [("pause", operator().name, "cli"), ("resume", operator().name, "cli")]


def test_remove_is_refused_while_events_are_unsent(receiver: Receiver) -> None:
    add_webhook(receiver)
    create_event(type="ExpirationWarning", destination="payments", recipient="ops", message="m")
    run = cli_error("destinations", "remove", "payments")
    assert run.returncode == 1
    assert "still has 1 unsent notification(s)" in run.message
    passes.process_pending()
    assert "removed destination payments" in cli("destinations", "remove", "payments").out
    assert "payments" not in cli("destinations", "list").out
    assert actions()[-1][:4] == ("payments", "delete", operator().name, "cli")


SECRET_TEXT = st.text(alphabet=string.ascii_letters + string.digits + "-.~", min_size=12, max_size=40)
_names = (f"prop-{n}" for n in itertools.count())


@hypothesis_settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secret=SECRET_TEXT)
def test_a_secret_given_to_add_appears_in_no_cli_or_mcp_output(receiver: Receiver, secret: str) -> None:
    name = next(_names)
    receiver.reply_with(Reply(status=401, body=f"unknown key {secret}"))
    runs = [
        cli("destinations", "add", name, "--channel", "Webhook", "--set", f"url={receiver.url}/{secret}",
            "--set", f"secret={secret}"),
        cli("destinations", "list"),
        cli("destinations", "list", "--json"),
        cli("destinations", "edit", name, "--description", "changed"),
        cli_error("destinations", "test", name),
        cli("destinations", "pause", name),
        cli("destinations", "resume", name),
    ]
    create_route(name=name, match={"labels": {"team": name}}, destinations=[name], actor=Actor("alice", "api"))
    runs.append(cli("routes", "list", "--json"))
    runs.append(cli("routes", "test", "--type", "Revocation", "--label", f"team={name}"))
    runs.append(cli("alert", "--type", "Revocation", "--message", "m", "--label", f"team={name}"))
    for run in runs:
        for text in (run.out, run.err, run.message):
            assert secret not in text
    tool_answers = [
        answers.destinations("n0nce"), answers.routes("n0nce"),
        answers.route_test("Revocation", None, None, {"team": name}, "n0nce"),
    ]
    assert name in json.dumps(tool_answers)
    assert secret not in json.dumps(tool_answers)
