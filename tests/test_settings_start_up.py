"""Start-up settings an operator meets first: the secret key and invalid values."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from certctl.config import dev_secret_key

ROOT = Path(__file__).resolve().parents[1]


def start(tmp_path, **env):
    """Import the production settings in a fresh interpreter, as manage.py would."""
    base = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    return subprocess.run(
        [sys.executable, "-c", "import certctl.settings as s; print(s.SECRET_KEY)"],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60,
    )


def test_debug_secret_key_is_generated_once_and_kept(tmp_path):
    path = tmp_path / ".secret_key"
    first = dev_secret_key(path)
    assert len(first) >= 50
    assert dev_secret_key(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".secret_key"]


def test_start_up_refused_without_secret_key_when_debug_is_off(tmp_path):
    result = start(tmp_path, DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY is not set and DJANGO_DEBUG is off" in result.stderr


def test_start_up_uses_the_given_secret_key(tmp_path):
    result = start(tmp_path, SECRET_KEY="given-" + "x" * 50)
    assert result.returncode == 0 and result.stdout.strip() == "given-" + "x" * 50


def test_invalid_duration_stops_start_up_naming_variable_and_value(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 50, CERTCTL_NOTIFICATION_BACKOFF_BASE="soon")
    assert result.returncode != 0
    assert "CERTCTL_NOTIFICATION_BACKOFF_BASE" in result.stderr and "'soon'" in result.stderr


@pytest.mark.parametrize("env, refusal", [
    (
        {"CERTCTL_NOTIFICATION_PASS_MAX_DURATION": "5m"},
        "CERTCTL_NOTIFICATION_PASS_MAX_DURATION (5m) is longer than a pass may start deliveries (250s",
    ),
    ({"CERTCTL_NOTIFICATION_PASS_MAX_DURATION": "0s"}, "CERTCTL_NOTIFICATION_PASS_MAX_DURATION='0s' is not valid"),
    (
        {"CERTCTL_CHANNEL_BREAKER_FAILURES": "30"},
        "CERTCTL_CHANNEL_BREAKER_MIN_ATTEMPTS (20) is below CERTCTL_CHANNEL_BREAKER_FAILURES (30)",
    ),
    ({"CERTCTL_CHANNEL_BREAKER_FAILURE_RATE": "1.5"}, "CERTCTL_CHANNEL_BREAKER_FAILURE_RATE='1.5' is not valid"),
    ({"CERTCTL_CHANNEL_BREAKER_WINDOW": "0s"}, "CERTCTL_CHANNEL_BREAKER_WINDOW='0s' is not valid"),
])
def test_pass_and_breaker_settings_that_cannot_work_stop_start_up_saying_why(tmp_path, env, refusal):
    result = start(tmp_path, SECRET_KEY="k" * 50, **env)
    assert result.returncode != 0
    assert refusal in result.stderr


def test_a_short_lease_holds_the_default_pass_duration_to_its_start_window_instead_of_refusing(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 50, CERTCTL_NOTIFICATION_LEASE="1m")
    assert result.returncode == 0, result.stderr
