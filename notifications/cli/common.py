"""What the `notifications` command's subcommands share: exit codes, argument types, the list filters as --options
(from the FilterSet), table cells, and the base of each group of subcommands."""
import argparse
import getpass
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from certctl.config import parse_duration
from notifications.actors import Actor
from notifications.errors import InvalidInput
from notifications.filtersets import filter_options, filters_given
from notifications.models import Channel, EventType, NotificationEvent, Status

USAGE = 2
NOT_FOUND_OR_REFUSED = 1
LIST_HINT = "list ids with `manage.py notifications list`"


def delivery_hint(what: str) -> str:
    return (
        f"the running worker (`manage.py qcluster`) delivers {what}; "
        f"`manage.py notifications sweep` delivers {what} now"
    )


class UsageParser(CommandParser):
    """Bad arguments exit 2 through call_command too, as they do from a shell (Django's default there is 1)."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"{self.prog}: {message}", returncode=USAGE)


def choice_of(values: Iterable[str]) -> Callable[[str], str]:
    """Accept a choice in any letter case (`webhook` → `Webhook`); argparse then checks it against the choices."""
    canonical = {value.lower(): value for value in values}
    return lambda text: canonical.get(text.lower(), text)


def choice(values: Sequence[str]) -> dict[str, Any]:
    """add_argument's arguments for one of `values`, in any letter case."""
    return {"type": choice_of(values), "choices": values}


CHANNEL_CHOICE = choice(Channel.values)
TYPE_CHOICE = choice(EventType.values)


def int_between(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            outside = f"{value} is outside {low}..{high}" if high else f"{value} is less than {low}"
            raise argparse.ArgumentTypeError(outside)
        return value

    return parse


def positive_duration(text: str) -> timedelta:
    try:
        value = parse_duration(text, days=True)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration; e.g. 30d, 12h")
    return value


def operator() -> Actor:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no LOGNAME
        name = f"uid-{os.getuid()}"
    return Actor(name, "cli")


# --- the list filters -------------------------------------------------------------

# Every filter of the FilterSet (notifications.filtersets.filter_options) is an --option of its name, but two:
# `--status` has been the delivery state since the CLI's first release, so certctl's status (the FilterSet's
# `status`: "read", or a delivery state not yet read) is --listed-status here.
OPTION_NAMES = {"delivery_status": "--status", "status": "--listed-status"}


def option(name: str) -> str:
    """The --option of the filter `name`."""
    return OPTION_NAMES.get(name, "--" + name.replace("_", "-"))


def add_filter_options(parser: argparse.ArgumentParser, excluded: Iterable[str] = (), scope: str = "") -> None:
    """An --option for each list filter (but `excluded`), with the FilterSet's help and choices; the FilterSet
    judges the values."""
    for declared in filter_options(excluded):
        # argparse formats help with %: a literal one is doubled.
        accepts = choice(declared.choices) if declared.choices else {"metavar": "TIME" if declared.time else "TEXT"}
        help_text = declared.help.replace("%", "%%") + scope
        parser.add_argument(option(declared.name), dest=declared.name, help=help_text, **accepts)


def given_filters(options: Mapping[str, Any]) -> dict[str, str]:
    """The list filters a subcommand was given."""
    return filters_given({declared.name: options.get(declared.name) for declared in filter_options()})


def filter_problem(exc: InvalidInput) -> CommandError:
    problems = "; ".join(f"{option(name) if name != 'ids' else 'ids'} {text}" for name, text in exc.errors.items())
    return CommandError(f"invalid filter: {problems}", returncode=USAGE)


# --- output -------------------------------------------------------------------------


def shorten(text: str | None, width: int) -> str:
    """One line of at most `width` characters, for table cells."""
    if not text:
        return ""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(value: object) -> str:
    """A time as a table cell, in the server's time zone; anything else (None) an empty cell."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if isinstance(value, datetime) else ""


def status_with_marker(event: NotificationEvent) -> str:
    """The delivery state, and whether an operator read it (a read dead event is dismissed)."""
    if not event.read_at:
        return event.status
    return f"{event.status}, {'dismissed' if event.status == Status.DEAD else 'read'}"


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def counter(bar: "tqdm[Any]") -> Callable[[int], None]:
    """A progress callback (rows done) that moves `bar`; on a terminal only (tqdm's default, disable=None)."""

    def advance(rows: int) -> None:
        bar.update(rows)

    return advance


class Subcommands(BaseCommand):
    """A group of subcommands: `add_parsers` declares them, a handle_<name> method runs each."""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        raise NotImplementedError

    def out(self, text: str = "") -> None:
        self.stdout.write(text)
