"""The command as an operator runs it: `python manage.py notifications …` in its own process, with real exit codes.

It uses its own SQLite file (migrated once for the module), so it runs the same whatever DATABASE_URL the tests use.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.receivers import Receiver, Reply

MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.sqlite3'}"
    run_manage(["migrate", "--verbosity", "0"], url).check_returncode()
    return url


def run_manage(args: list[str], database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Only what this run needs: no broker (REDIS_URL), no channel settings from the developer's shell.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CERTCTL_", "REDIS_", "DATABASE_", "DJANGO_"))}
    clean.update(
        DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY="cli-test-secret-key-not-for-production",
        DATABASE_URL=database_url, CERTCTL_LOG_LEVEL="WARNING", **env,
    )
    return subprocess.run(
        [sys.executable, str(MANAGE_PY), *args], env=clean, capture_output=True, text=True, timeout=60,
        cwd=MANAGE_PY.parent,
    )


def test_usage_errors_exit_2_with_argparse_usage(database_url: str) -> None:
    bad_type = run_manage(
        ["notifications", "send", "--type", "Expired", "--channel", "Webhook", "--recipient", "r", "--message", "m"],
        database_url,
    )
    no_subcommand = run_manage(["notifications"], database_url)

    assert bad_type.returncode == 2
    assert bad_type.stderr.startswith("usage: manage.py notifications send")
    assert "argument --type: invalid choice: 'Expired'" in bad_type.stderr
    assert no_subcommand.returncode == 2
    assert "the following arguments are required: SUBCOMMAND" in no_subcommand.stderr


def test_send_fail_requeue_sweep_sent_and_the_exit_code_of_each_step(database_url: str, receiver: Receiver) -> None:
    """The issue's walkthrough with one attempt allowed, so that the first failure is final and nothing waits."""
    receiver.reply_with(Reply(status=500, body="receiver broken"))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_manage(
            ["notifications", *args], database_url,
            CERTCTL_WEBHOOK_URL=receiver.url + "/hook", CERTCTL_NOTIFICATION_MAX_ATTEMPTS="1",
        )

    send = cli("send", "--type", "ExpirationWarning", "--channel", "Webhook", "--recipient", "ops@example.com",
               "--message", "api.example.com expires in 7 days")
    assert send.returncode == 0, send.stderr
    event_id = send.stdout.split()[2]
    assert event_id.startswith("notif-")

    failed_sweep = cli("sweep")
    assert failed_sweep.returncode == 0
    assert "sweep: 1 claimed (pending and due retries): 0 sent, 0 failed, 1 dead" in failed_sweep.stdout
    dead = json.loads(cli("show", event_id, "--json").stdout)
    assert (dead["status"], dead["retry_count"]) == ("dead", 1)
    assert [(a["http_status"], a["resulting_status"]) for a in dead["attempts"]] == [(500, "dead")]

    receiver.reply_with(Reply(status=200))
    requeue = cli("requeue", event_id)
    assert (requeue.returncode, requeue.stdout.splitlines()[0]) == (0, f"{event_id}: requeued")
    sent_sweep = cli("sweep")
    assert "sweep: 1 claimed (pending and due retries): 1 sent, 0 failed, 0 dead" in sent_sweep.stdout
    shown = json.loads(cli("show", event_id, "--json").stdout)
    assert shown["status"] == "sent"
    assert [a["resulting_status"] for a in shown["attempts"]] == ["dead", "sent"]
    assert [(a["source"], a["previous_status"]) for a in shown["operator_actions"]] == [("cli", "dead")]
    assert [r.headers["X-Certctl-Event-ID"] for r in receiver.requests] == [event_id, event_id]

    refused = cli("requeue", event_id)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"CommandError: not requeued: notification {event_id} is sent; "
        "only failed or dead notifications can be requeued"
    )
    unknown = cli("show", "notif-unknown")
    assert unknown.returncode == 1
    assert "notification notif-unknown not found" in unknown.stderr
