"""Start-up settings an operator meets first: the secret key and invalid values."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from certctl import env_file
from certctl.config import dev_secret_key

ROOT = Path(__file__).resolve().parents[1]


def start(tmp_path, code="print(s.SECRET_KEY)", **env):
    """Import the production settings in a fresh interpreter, as manage.py would; no .env unless `env` names one."""
    base = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "CERTCTL_ENV_FILE": ""}
    return subprocess.run(
        [sys.executable, "-c", "import certctl.settings as s; " + code],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60,
    )


def manage(tmp_path, *arguments, **env):
    base = {"PATH": os.environ["PATH"], "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "CERTCTL_ENV_FILE": ""}
    return subprocess.run(
        [sys.executable, "manage.py", *arguments],
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
    assert result.returncode == 0
    assert result.stdout.strip() == "given-" + "x" * 50


def test_invalid_duration_stops_start_up_naming_variable_and_value(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 50, CERTCTL_NOTIFICATION_BACKOFF_BASE="soon")
    assert result.returncode != 0
    assert "CERTCTL_NOTIFICATION_BACKOFF_BASE" in result.stderr
    assert "'soon'" in result.stderr


@pytest.mark.parametrize(("env", "refusal"), [
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


def test_settings_take_what_the_environment_leaves_unset_from_the_env_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("SECRET_KEY='from-the-file-" + "x" * 40 + "'\nCERTCTL_NOTIFICATION_MAX_ATTEMPTS=7\n")
    result = start(
        tmp_path, "print(s.SECRET_KEY, s.CERTCTL_NOTIFICATION_MAX_ATTEMPTS)",
        CERTCTL_ENV_FILE=str(path), CERTCTL_NOTIFICATION_MAX_ATTEMPTS="3",
    )
    assert result.returncode == 0, result.stderr
    # A variable set in the environment wins over the file's line.
    assert result.stdout.split() == ["from-the-file-" + "x" * 40, "3"]


def test_start_up_refused_when_the_named_env_file_is_missing(tmp_path):
    result = start(tmp_path, SECRET_KEY="k" * 50, CERTCTL_ENV_FILE=str(tmp_path / "missing.env"))
    assert result.returncode != 0
    assert f"CERTCTL_ENV_FILE='{tmp_path / 'missing.env'}' is not a file" in result.stderr


def test_generated_values_are_added_once_next_to_the_users_lines(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / ".env"
    path.write_text("CERTCTL_WEBHOOK_URL=https://hooks.example.com/certctl\n")
    path.chmod(0o644)

    assert env_file.add_generated(path) == ["SECRET_KEY"]
    first = path.read_text()
    assert first.startswith("CERTCTL_WEBHOOK_URL=https://hooks.example.com/certctl\n")
    secret_key = re.search(r"^SECRET_KEY='([\w-]+)'$", first, re.MULTILINE).group(1)
    assert len(secret_key) >= 50
    assert path.stat().st_mode & 0o777 == 0o600  # it holds a secret now

    # Later starts keep the key: sessions survive, and every process signs alike.
    assert env_file.add_generated(path) == []
    assert path.read_text() == first


def test_a_new_env_file_is_private_from_the_start_and_says_what_it_is(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    path = tmp_path / ".env"
    assert env_file.add_generated(path) == ["SECRET_KEY"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().startswith(env_file.HEADER)


def test_nothing_is_generated_for_a_value_the_environment_has(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "operator-" + "k" * 50)
    path = tmp_path / ".env"
    assert env_file.add_generated(path) == []
    assert not path.exists()


def test_sqlite_does_not_report_the_postgresql_only_index_column_but_every_other_check(tmp_path):
    # With --database, as migrate and runserver run them: W040 is a check of the models against the database.
    result = manage(tmp_path, "check", "--deploy", "--database", "default", SECRET_KEY="k" * 50)
    assert "models.W040" not in result.stderr + result.stdout
    # Only that one is silenced: the deploy checks still speak (no HSTS, no HTTPS redirect, ...).
    assert "security.W004" in result.stderr


def test_postgresql_silences_no_check(tmp_path):
    result = start(
        tmp_path, "print(s.SILENCED_SYSTEM_CHECKS if hasattr(s, 'SILENCED_SYSTEM_CHECKS') else [])",
        SECRET_KEY="k" * 50, DATABASE_URL="postgres://certctl@127.0.0.1:5432/certctl",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
