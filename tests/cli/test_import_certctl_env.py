"""`notifications import-certctl --env-file`: certctl's notifier variables become stored destinations, repeatably,
audited, secrets sealed and never printed."""
from pathlib import Path

import pytest

from notifications.cli.common import operator
from notifications.models import ConfigurationAction, Destination
from notifications.notifiers import destination_config
from tests.cli.conftest import cli, cli_error

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-token-4f1e9a"
WEBHOOK_SECRET = "hook-secret-8c2d1b7e"
SMTP_PASSWORD = "smtp-password-6a3f0c"
SECRETS = (SLACK_URL, "slack-token-4f1e9a", WEBHOOK_SECRET, SMTP_PASSWORD, "pd-routing-key-1d2c")

# As certctl's deploy/.env.example writes it: comments, quotes, export, other services' variables.
ENV_FILE = f"""
# certctl server
CERTCTL_DATABASE_URL=postgres://certctl:certctl@postgres:5432/certctl
CERTCTL_SLACK_WEBHOOK_URL={SLACK_URL}
CERTCTL_SLACK_CHANNEL="#certs"
export CERTCTL_WEBHOOK_URL=https://hooks.example.com/certctl
CERTCTL_WEBHOOK_SECRET='{WEBHOOK_SECRET}'
CERTCTL_SMTP_HOST=smtp.example.com
CERTCTL_SMTP_PORT=2525
CERTCTL_SMTP_PASSWORD={SMTP_PASSWORD}
CERTCTL_SMTP_USE_TLS=false
CERTCTL_PAGERDUTY_ROUTING_KEY=
"""


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "certctl.env"
    path.write_text(ENV_FILE)
    return path


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_each_configured_channel_becomes_a_destination(env_file: Path) -> None:
    run = cli("import-certctl", "--env-file", str(env_file))
    assert f"certctl environment file {env_file}: 3 channel(s) configured" in run.out
    assert "  certctl-webhook (Webhook): created - secret, url" in run.out
    assert "  certctl-slack (Slack): created - channel_name, webhook_url" in run.out
    assert "  certctl-email (Email): skipped - CERTCTL_SMTP_FROM_ADDRESS not set" in run.out
    assert "destinations: 2 created, 0 updated, 0 unchanged, 1 skipped" in run.out
    assert_no_secret(run.out, run.err)
    slack = Destination.objects.get(name="certctl-slack")
    assert (slack.channel, slack.config, slack.from_environment) == ("Slack", {"channel_name": "#certs"}, False)
    assert destination_config(slack)["webhook_url"] == SLACK_URL
    webhook = Destination.objects.get(name="certctl-webhook")
    assert webhook.config == {}
    assert WEBHOOK_SECRET not in webhook.sealed_secrets
    assert destination_config(webhook) == {"url": "https://hooks.example.com/certctl", "secret": WEBHOOK_SECRET}
    audit = ConfigurationAction.objects.order_by("target").values_list("target", "action", "actor", "source")
    assert list(audit) == [
        ("certctl-slack", "create", operator().name, "cli"), ("certctl-webhook", "create", operator().name, "cli"),
    ]


def test_running_again_updates_what_changed_and_leaves_the_rest(env_file: Path) -> None:
    cli("import-certctl", "--env-file", str(env_file))
    again = cli("import-certctl", "--env-file", str(env_file)).out
    assert "destinations: 0 created, 0 updated, 2 unchanged, 1 skipped" in again
    env_file.write_text(
        ENV_FILE.replace('CERTCTL_SLACK_CHANNEL="#certs"\n', "")
        .replace(WEBHOOK_SECRET, "rotated-secret-0e9f")
        .replace("CERTCTL_SMTP_PORT=2525", "CERTCTL_SMTP_FROM_ADDRESS=x@y.z")
    )
    run = cli("import-certctl", "--env-file", str(env_file))
    assert "  certctl-slack (Slack): updated - channel_name" in run.out
    assert "  certctl-webhook (Webhook): updated - secret" in run.out
    assert "  certctl-email (Email): created - from_address, host, password, use_tls" in run.out
    assert "rotated-secret-0e9f" not in run.out
    assert Destination.objects.get(name="certctl-slack").config == {}
    assert destination_config(Destination.objects.get(name="certctl-webhook"))["secret"] == "rotated-secret-0e9f"
    email = Destination.objects.get(name="certctl-email")
    assert email.config == {"host": "smtp.example.com", "from_address": "x@y.z", "use_tls": False}
    updates = ConfigurationAction.objects.filter(action="update").order_by("target")
    assert [(a.target, a.detail["fields"]) for a in updates] == [
        ("certctl-slack", ["channel_name"]), ("certctl-webhook", ["secret"]),
    ]


def test_a_dry_run_writes_nothing(env_file: Path) -> None:
    run = cli("import-certctl", "--env-file", str(env_file), "--dry-run")
    assert "  certctl-slack (Slack): would create - channel_name, webhook_url" in run.out
    assert "destinations: 2 would create, 0 would update, 0 unchanged, 1 skipped" in run.out
    assert "dry run: no destination was written" in run.out
    assert not Destination.objects.filter(from_environment=False).exists()
    assert not ConfigurationAction.objects.exists()


def test_a_value_the_channel_does_not_take_is_named_by_its_variable(tmp_path: Path, db: None) -> None:
    path = tmp_path / "bad.env"
    path.write_text(f"CERTCTL_SLACK_WEBHOOK_URL=not a url {SLACK_URL}\nCERTCTL_PAGERDUTY_SEVERITY=loud\n"
                    "CERTCTL_PAGERDUTY_ROUTING_KEY=pd-routing-key-1d2c\n")
    run = cli("import-certctl", "--env-file", str(path))
    assert "certctl-slack (Slack): skipped - CERTCTL_SLACK_WEBHOOK_URL must be an http(s) URL" in run.out
    assert "certctl-pagerduty (PagerDuty): skipped - CERTCTL_PAGERDUTY_SEVERITY must be one of" in run.out
    assert_no_secret(run.out, run.err)
    assert not Destination.objects.filter(from_environment=False).exists()


def test_a_destination_of_that_name_on_another_channel_is_left_alone(env_file: Path) -> None:
    Destination.objects.create(name="certctl-slack", channel="Webhook", config={})
    run = cli("import-certctl", "--env-file", str(env_file))
    assert "certctl-slack (Slack): skipped - a destination certctl-slack of channel Webhook exists" in run.out
    assert Destination.objects.get(name="certctl-slack").channel == "Webhook"


def test_a_missing_file_and_no_source_are_clear_errors(tmp_path: Path, db: None) -> None:
    missing = cli_error("import-certctl", "--env-file", str(tmp_path / "nope.env"))
    assert missing.returncode == 1
    assert missing.message == (
        f"no destination imported: --env-file {tmp_path / 'nope.env'}: no such file; "
        "give the path of certctl's environment file (.env)"
    )
    neither = cli_error("import-certctl")
    assert neither.returncode == 2
    assert "needs --database-url" in neither.message
    assert "--env-file" in neither.message


def test_without_a_secrets_key_nothing_is_imported(env_file: Path, settings: pytest.FixtureRequest) -> None:
    settings.CERTCTL_SECRETS_KEYS = ""
    run = cli_error("import-certctl", "--env-file", str(env_file))
    assert run.returncode == 1
    assert run.message.startswith("no destination imported: secret fields cannot be stored")
    assert_no_secret(run.message, run.out, run.err)
    assert not Destination.objects.filter(from_environment=False).exists()
