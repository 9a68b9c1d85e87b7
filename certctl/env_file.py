"""The checkout's `.env`: settings for every process started from it, among them what `./bin/run` generated.

The settings load it first, without overriding variables already set in the environment, so that
`manage.py` in a second shell signs and reads like the `./bin/run` of the first. CERTCTL_ENV_FILE names
another file, or none when set but empty (the test run does that: a developer's .env must not change it).

`python -m certctl.env_file`, run by `./bin/run`, adds each value of GENERATED that neither the
environment nor the file has yet.
"""
import base64
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import dotenv_values, load_dotenv, set_key

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Made once per checkout and kept; another generated value is one more entry.
GENERATED: dict[str, Callable[[], str]] = {
    # Signs sessions and CSRF tokens: the web server, the worker and every CLI command must share it.
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    # Encrypts destinations' secret fields at rest (notifications.sealing).
    "CERTCTL_SECRETS_KEYS": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
}

HEADER = """\
# Read at start-up by every process started from this directory (./bin/run, manage.py, gunicorn);
# a variable already set in the environment wins over its line here. ./bin/run added the values it
# generated; add your own settings too (README, "Configuration"). Keep this file private (mode 600).
"""


def env_file_path() -> Path | None:
    configured = os.environ.get("CERTCTL_ENV_FILE")
    if configured is None:
        return PROJECT_DIR / ".env"
    return Path(configured) if configured.strip() else None


def load() -> None:
    path = env_file_path()
    if path is None:
        return
    if "CERTCTL_ENV_FILE" in os.environ and not path.is_file():
        raise ImproperlyConfigured(
            f"CERTCTL_ENV_FILE={str(path)!r} is not a file: create it, or unset CERTCTL_ENV_FILE for "
            f"{PROJECT_DIR / '.env'}."
        )
    load_dotenv(path, override=False)


def add_generated(path: Path) -> list[str]:
    """Generate into `path` each value of GENERATED set neither in the environment nor there; return their names."""
    present = dotenv_values(path) if path.exists() else {}
    missing = [
        name for name in GENERATED if not os.environ.get(name, "").strip() and not (present.get(name) or "").strip()
    ]
    if not missing:
        return []
    if not path.exists():
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(HEADER)
    for name in missing:
        set_key(path, name, GENERATED[name]())
    path.chmod(0o600)
    return missing


def main() -> None:
    path = env_file_path()
    if path is None:
        return
    added = add_generated(path)
    if added:
        sys.stdout.write(
            f"Generated {', '.join(added)} into {path} (mode 600), where every manage.py command finds it.\n"
        )


if __name__ == "__main__":
    main()
