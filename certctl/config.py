"""Reading configuration from the environment.

Every reader raises ImproperlyConfigured with the variable's name and value, so
that a typo stops start-up with a message instead of a surprise at 3 a.m.
"""
import os
import re
import tempfile
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path
from typing import NoReturn, TypedDict

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
# Not Go's: days, accepted where a variable asks for them (retention periods such as 90d).
_DAYS = 86400.0
_PART_WITH_DAYS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")


def parse_duration(text: str, days: bool = False) -> timedelta:
    """Parse a Go duration string ("90s", "2m", "1h30m", "1.5h") into a timedelta; with `days`, "90d" too."""
    value = text.strip()
    if not value:
        raise ValueError("empty duration")
    sign = 1
    if value[0] in "+-":
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if value == "0":
        return timedelta(0)
    seconds = 0.0
    position = 0
    while position < len(value):
        match = (_PART_WITH_DAYS if days else _GO_PART).match(value, position)
        if not match:
            units, examples = (
                ("ns, us, ms, s, m, h, d", "90s, 2m, 1h30m, 90d") if days else ("ns, us, ms, s, m, h", "90s, 2m, 1h30m")
            )
            raise ValueError(f"invalid duration {text!r}: use a number and a unit ({units}), e.g. {examples}")
        seconds += float(match.group(1)) * (_DAYS if match.group(2) == "d" else _GO_UNITS[match.group(2)])
        position = match.end()
    return timedelta(seconds=sign * seconds)


def _raw(name: str, default: str) -> str:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip()


def _refuse(name: str, value: str, expected: str) -> NoReturn:
    raise ImproperlyConfigured(f"{name}={value!r} is not valid: expected {expected}.")


def env_str(name: str, default: str = "") -> str:
    return _raw(name, default)


def env_duration(name: str, default: str, minimum: timedelta = timedelta(0), days: bool = False) -> timedelta:
    expected = "a Go duration such as 30s, 2m, 1h or 1h30m" + (", or days such as 90d" if days else "")
    # Set but empty is an unfilled template (`X=${X}`) more often than a wish for the default.
    if name in os.environ and not os.environ[name].strip():
        _refuse(name, os.environ[name], f"{expected}; unset the variable for the default")
    value = _raw(name, default)
    try:
        duration = parse_duration(value, days=days)
    except ValueError:
        _refuse(name, value, expected)
    if duration < minimum:
        _refuse(name, value, f"a duration of at least {minimum.total_seconds():g}s")
    return duration


def env_int(name: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name, str(default))
    try:
        number = int(value)
    except ValueError:
        _refuse(name, value, "a whole number")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        _refuse(name, value, f"a whole number {bounds}")
    return number


def env_float(
    name: str, default: float, minimum: float | None = None, maximum: float | None = None
) -> float:
    value = _raw(name, str(default))
    try:
        number = float(value)
    except ValueError:
        _refuse(name, value, "a number")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        _refuse(name, value, f"a number between {minimum} and {maximum}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name, "true" if default else "false")
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    _refuse(name, value, "true or false")


def env_choice(name: str, default: str, choices: Collection[str]) -> str:
    value = _raw(name, default)
    if value not in choices:
        _refuse(name, value, "one of " + ", ".join(choices))
    return value


def dev_secret_key(path: Path) -> str:
    """The debug-mode secret key, generated once and kept in `path` so that logins survive restarts
    and the web server, the worker and CLI commands sign alike."""
    if not path.exists():
        fd, staged = tempfile.mkstemp(dir=path.parent, prefix=".secret_key.")
        with os.fdopen(fd, "w") as file:
            file.write(get_random_secret_key())
        try:
            os.link(staged, path)  # atomic: when two processes start at once, the first key wins
        except FileExistsError:
            pass
        finally:
            os.unlink(staged)
    return path.read_text().strip()


class QClusterSettings(TypedDict, total=False):
    """settings.Q_CLUSTER: the keys of django-q2's configuration that certctl sets."""

    name: str
    workers: int
    timeout: int
    retry: int
    max_attempts: int
    catch_up: bool
    ack_failures: bool
    save_limit: int
    queue_limit: int
    ALT_CLUSTERS: dict[str, dict[str, object]]
    label: str
    redis: str
    orm: str
