"""The README's path for a new user, from a fresh clone: `./bin/run` in the background, the CLI in a second shell
whose environment has nothing of the first's, what the first start prints, and stopping with SIGTERM or SIGINT.

The clone is of this checkout as it stands (HEAD plus uncommitted changes to tracked files). Its environment is
the shell's minimum (PATH, HOME and the port): no SECRET_KEY, DJANGO_DEBUG or DATABASE_URL, so SQLite as the
README recommends."""
import json
import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.production.local_run import free_port, group_members, install_this_virtualenv, wait_for

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[2]
START_WITHIN_S = 60
# Stopping takes about two seconds when nothing is in flight (the worker's stop, then the web server's).
EXIT_WITHIN_S = 10
RULE = "=" * 72
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ ")


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    home = tmp_path_factory.mktemp("newcomer")
    project = home / "certctl-notifications"
    snapshot = subprocess.run(
        ["git", "stash", "create"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--shared", "--no-checkout", str(PROJECT), str(project)], check=True)
    subprocess.run(["git", "checkout", "--quiet", "--detach", snapshot or "HEAD"], cwd=project, check=True)
    install_this_virtualenv(project)
    return project


def shell_environment(project, **extra):
    return {"PATH": os.environ["PATH"], "HOME": str(project.parent), **extra}


class Run:
    """`./bin/run` started as in a terminal: the leader of its own process group."""

    def __init__(self, project, log, port=None):
        self.port = port or free_port()
        self.log = log
        with open(log, "wb") as output:
            self.process = subprocess.Popen(
                ["./bin/run"], cwd=project, env=shell_environment(project, PORT=str(self.port)),
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self):
        return self.log.read_text(errors="replace")

    def wait_for_banner(self):
        """The banner's lines, and the lines before and after it."""
        wait_for(lambda: self.output().count(RULE) >= 2, START_WITHIN_S, "./bin/run printed no banner", self.log)
        lines = self.output().splitlines()
        first = lines.index(RULE)
        last = lines.index(RULE, first + 1)
        return lines[:first], [line.strip() for line in lines[first + 1:last]], lines[last + 1:]

    def stop_with(self, send_signal):
        """Send a signal; every process of bin/run's group (web server, worker processes) must be gone soon."""
        try:
            send_signal(self.process.pid)
            wait_for(
                lambda: not group_members(self.process.pid), EXIT_WITHIN_S, "bin/run's processes did not all exit",
                self.log,
            )
            self.process.wait(timeout=5)
        finally:
            if group_members(self.process.pid):
                os.killpg(self.process.pid, signal.SIGKILL)
        with pytest.raises(httpx.ConnectError):
            httpx.get(self.url + "/health", timeout=2)


class WorkerStartingLate:
    """The clone's .venv/bin/python, wrapped so that `manage.py qcluster` starts `seconds` late: the web server is up
    well before the worker, and bin/run must wait for both. The same interpreter runs, as the venv's (argv[0])."""

    def __init__(self, project, seconds):
        self.python = project / ".venv" / "bin" / "python"
        self.seconds = seconds

    def __enter__(self):
        self.interpreter = os.path.realpath(self.python)
        self.python.unlink()
        self.python.write_text(
            f'#!/bin/bash\n[[ " $* " == *" qcluster "* ]] && sleep {self.seconds}\n'
            f'exec -a "$0" {self.interpreter} "$@"\n'
        )
        self.python.chmod(0o755)

    def __exit__(self, *exc_info):
        self.python.unlink()
        self.python.symlink_to(self.interpreter)


def second_shell(project, *arguments):
    """`.venv/bin/python manage.py …` in a shell that has none of bin/run's variables."""
    return python_in_a_second_shell(project, "manage.py", *arguments)


def python_in_a_second_shell(project, *arguments):
    result = subprocess.run(
        [".venv/bin/python", *arguments], cwd=project, env=shell_environment(project),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_first_start_then_the_readme_commands_in_a_second_shell_then_sigterm(clone, receiver, tmp_path):
    # Before any start there is no .env: with no SECRET_KEY and debug off, start-up is refused, saying where to set it.
    refused = subprocess.run(
        [".venv/bin/python", "manage.py", "notifications", "stats"], cwd=clone, env=shell_environment(clone),
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0
    assert "SECRET_KEY is not set and DJANGO_DEBUG is off" in refused.stderr
    assert str(clone / ".env") in refused.stderr

    # The user's own setting in .env: bin/run adds what it generates next to it.
    (clone / ".env").write_text(f"CERTCTL_WEBHOOK_URL={receiver.url}/hook\n")
    with WorkerStartingLate(clone, seconds=4):
        run = Run(clone, tmp_path / "first-start.log")
        try:
            before, banner, after = run.wait_for_banner()
        except BaseException:
            os.killpg(run.process.pid, signal.SIGKILL)
            raise
    try:
        # The banner comes once the web server answered bin/run's own /health request and the worker had started,
        # after everything else of the start-up: past it, only the running service's log records.
        start_up = "\n".join(before)
        assert '"GET /health HTTP/1.1" 200' in start_up
        assert re.search(r"Q Cluster \S+ \[certctl\] running\.", start_up)
        assert "Applying notifications.0001_initial... OK" in start_up
        assert "Starting development server" in start_up
        assert all(LOG_RECORD.match(line) for line in after if line), after
        password = (clone / ".admin_password").read_text().strip()
        assert f"log in with password {password} (kept in {clone / '.admin_password'})" in "\n".join(banner)
        assert banner[0] == f"certctl notifications is up: {run.url}/"
        assert f"kill {run.process.pid}" in banner[-1]
        # SQLite's W040 (an index column only PostgreSQL uses) is expected there, and not shown.
        assert "W040" not in run.output()
        assert "System check identified some issues" not in run.output()

        env_file = clone / ".env"
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert f"CERTCTL_WEBHOOK_URL={receiver.url}/hook" in env_file.read_text()
        assert re.search(r"^SECRET_KEY='[\w-]{50,}'$", env_file.read_text(), re.MULTILINE)

        # A second shell, as in the README's "Try it": the CLI finds the secret key and the same database.
        assert json.loads(second_shell(clone, "notifications", "stats", "--json"))["notifications_total"] == 0
        sent = second_shell(
            clone, "notifications", "send", "--type", "ExpirationWarning", "--channel", "Webhook",
            "--recipient", "ops@example.com", "--message", "api.example.com expires in 7 days",
        )
        event_id = re.search(r"created notification (notif-\S+)", sent).group(1)
        # bin/run's worker delivers what the second shell created.
        wait_for(lambda: receiver.requests, 30, "the receiver got nothing", run.log)
        assert receiver.requests[0].json()["message"] == "api.example.com expires in 7 days"
        wait_for(
            lambda: json.loads(second_shell(clone, "notifications", "show", event_id, "--json"))["status"] == "sent",
            30, "the event was not recorded as sent", run.log,
        )

        # The printed password opens the web UI, which lists the same event.
        with httpx.Client(base_url=run.url, timeout=10) as browser:
            login_page = browser.get("/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
            browser.post("/login/", data={"username": "admin", "password": password, "csrfmiddlewaretoken": token})
            assert event_id in browser.get("/notifications/").text
    finally:
        run.stop_with(lambda pid: os.kill(pid, signal.SIGTERM))
    assert run.process.returncode == 143


@pytest.mark.parametrize(
    "send_signal",
    [lambda pid: os.kill(pid, signal.SIGINT), lambda pid: os.killpg(pid, signal.SIGINT)],
    ids=["SIGINT to bin/run", "Ctrl-C: SIGINT to its process group"],
)
def test_a_later_start_says_where_the_password_is_kept_and_sigint_stops_web_server_and_worker(
    clone, tmp_path, send_signal
):
    if not (clone / ".admin_password").exists():  # this test runs alone: a first start's steps
        python_in_a_second_shell(clone, "-m", "certctl.env_file")
        second_shell(clone, "migrate", "--noinput", "-v0")
        second_shell(clone, "ensure_operator")
    password = (clone / ".admin_password").read_text().strip()
    run = Run(clone, tmp_path / "later-start.log")
    try:
        _, banner, _ = run.wait_for_banner()
        assert f"Log in as 'admin' with the password kept in {clone / '.admin_password'}." in banner
        assert password not in run.output()
    finally:
        run.stop_with(send_signal)
    assert run.process.returncode == 130


def test_when_the_web_server_cannot_start_the_worker_is_stopped_too(clone, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        run = Run(clone, tmp_path / "port-taken.log", port=taken.getsockname()[1])
        try:
            assert run.process.wait(timeout=START_WITHIN_S) == 1
            wait_for(lambda: not group_members(run.process.pid), EXIT_WITHIN_S, "the worker was left running", run.log)
        finally:
            if group_members(run.process.pid):
                os.killpg(run.process.pid, signal.SIGKILL)
    output = run.output()
    assert "That port is already in use" in output
    assert "stopped while starting" in output
    assert RULE not in output
