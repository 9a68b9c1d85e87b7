"""SIGTERM to a whole process group (systemd's KillMode=control-group, `kill -TERM -- -PGID`) stops every process
of `manage.py qcluster` and of `bin/run` within the grace period; nothing is left waiting on a dead child."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.production.local_run import free_port, group_members, install_this_virtualenv, wait_for

PROJECT = Path(__file__).resolve().parents[2]
# Far below the 300 s stop grace period of the deployment docs: with nothing in flight, stopping takes a second.
EXIT_WITHIN_S = 20
START_WITHIN_S = 60

pytestmark = pytest.mark.slow


def environment(tmp_path, **extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CERTCTL_", "REDIS_URL", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="certctl.settings", SECRET_KEY="shutdown-test-key",
        DATABASE_URL=f"sqlite:///{tmp_path / 'shutdown.sqlite3'}", PYTHONUNBUFFERED="1", **extra,
    )
    return env


def stop_group(process, log):
    os.killpg(process.pid, signal.SIGTERM)
    wait_for(lambda: not group_members(process.pid), EXIT_WITHIN_S, "every process of the group did not exit", log)
    assert process.wait(timeout=5) is not None


def test_qcluster_exits_entirely_when_its_process_group_gets_sigterm(tmp_path):
    env = environment(tmp_path)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=PROJECT, env=env, check=True, timeout=120
    )
    log = tmp_path / "qcluster.log"
    with open(log, "wb") as output:
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"], cwd=PROJECT, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        # main process, sentinel, monitor, pusher and two workers
        wait_for(lambda: len(group_members(cluster.pid)) >= 6, START_WITHIN_S, "the cluster did not start", log)
        # The sentinel is asleep in its guard loop, where the signal used to leave the main process hanging.
        time.sleep(1)

        stop_group(cluster, log)
    finally:
        if group_members(cluster.pid):
            os.killpg(cluster.pid, signal.SIGKILL)
    assert "sentinel and worker processes were signalled too" in log.read_text()


def project_copy_with_the_current_virtualenv(tmp_path):
    """The project's files in tmp_path, with a .venv that is this interpreter's and counts as installed,
    so that bin/run neither creates nor installs anything."""
    copy = tmp_path / "project"
    listing = ["git", "ls-files", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=PROJECT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (PROJECT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, copy / name)
    install_this_virtualenv(copy)
    return copy


def test_bin_run_logs_no_query_key_and_exits_entirely_when_its_process_group_gets_sigterm(tmp_path):
    project = project_copy_with_the_current_virtualenv(tmp_path)
    port = free_port()
    log = tmp_path / "run.log"
    with open(log, "wb") as output:
        run = subprocess.Popen(
            ["bash", "bin/run"], cwd=project, env=environment(tmp_path, PORT=str(port)),
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def web_answers():
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(web_answers, START_WITHIN_S, "the web server did not answer", log)
        wait_for(
            lambda: "running." in log.read_text(errors="replace"), START_WITHIN_S, "the cluster did not start", log
        )
        httpx.get(f"http://127.0.0.1:{port}/api/v1/notifications?api_key=Kq9-runserver-key-in-the-query", timeout=5)
        time.sleep(1)

        stop_group(run, log)
    finally:
        if group_members(run.pid):
            os.killpg(run.pid, signal.SIGKILL)
    # runserver's request line goes through the same log filters as everything else.
    output = log.read_text(errors="replace")
    assert "Kq9-runserver-key-in-the-query" not in output
    assert '"GET /api/v1/notifications?api_key=[redacted] HTTP/1.1" 401' in output
