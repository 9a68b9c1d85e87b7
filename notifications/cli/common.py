"""What the `notifications` command's subcommands share: exit codes, argument types, the selection filters as
--options, table cells, and the base of each group of subcommands."""
import argparse
import getpass
import json
import os
import re
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from certctl.config import parse_duration
from notifications.actors import Actor
from notifications.errors import InvalidInput
from notifications.models import CauseKind, Channel, EventType, NotificationEvent, Status

USAGE = 2
NOT_FOUND_OR_REFUSED = 1
LIST_HINT = "list ids with `manage.py notifications list`"


def delivery_hint(what):
    return f"the running worker (`manage.py qcluster`) delivers {what}; `manage.py notifications sweep` delivers {what} now"


class UsageParser(CommandParser):
    """Bad arguments exit 2 through call_command too, as they do from a shell (Django's default there is 1)."""

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"{self.prog}: {message}", returncode=USAGE)


def choice_of(choices):
    """Accept a choice in any letter case (`webhook` → `Webhook`); argparse then checks it against `choices`."""
    canonical = {value.lower(): value for value in choices.values}
    return lambda text: canonical.get(text.lower(), text)


def int_between(low, high=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}" if high else f"{value} is less than {low}")
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


def operator():
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no LOGNAME
        name = f"uid-{os.getuid()}"
    return Actor(name, "cli")


def shorten(text, width):
    """One line of at most `width` characters, for table cells."""
    if not text:
        return ""
    flat = re.sub(r"\s+", " ", str(text)).strip()
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def when(value):
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S %Z") if value else ""


def status_with_marker(event: NotificationEvent) -> str:
    """The delivery state, and whether an operator read it (a read dead event is dismissed)."""
    if not event.read_at:
        return event.status
    return f"{event.status}, {'dismissed' if event.status == Status.DEAD else 'read'}"


def as_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False)


CHANNEL_CHOICE: dict[str, Any] = dict(type=choice_of(Channel), choices=Channel.values)
TYPE_CHOICE: dict[str, Any] = dict(type=choice_of(EventType), choices=EventType.values)

# The filters every selecting subcommand shares with the REST API (notifications.filtersets), as --options.
TIME_OPTIONS = {
    "created_after": "created at or after this time",
    "created_before": "created before this time",
    "failed_after": "last attempt failed at or after this time",
    "failed_before": "last attempt failed before this time",
}
SELECTION_FILTERS = ("channel", "type", "certificate_id", *TIME_OPTIONS, "error", "cause", "cause_kind")


def option(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_selection_filters(parser: argparse.ArgumentParser, scope: str = "") -> None:
    parser.add_argument("--channel", help=f"only this channel{scope}", **CHANNEL_CHOICE)
    parser.add_argument("--type", help=f"only this event type{scope}", **TYPE_CHOICE)
    parser.add_argument("--certificate-id", help=f"only events about this certificate{scope}")
    for name, text in TIME_OPTIONS.items():
        parser.add_argument(option(name), metavar="TIME", help=f"{text}; ISO 8601, e.g. 2026-11-29T09:00:00Z (UTC if no offset){scope}")
    parser.add_argument("--error", metavar="TEXT", help=f"last error contains this text, any letter case{scope}")
    parser.add_argument("--cause", metavar="CAUSE", help=f"dead ones of exactly this cause, as `groups` shows it{scope}")
    parser.add_argument(
        "--cause-kind", choices=CauseKind.values, help=f"dead ones whose final failure was permanent or transient{scope}"
    )


def given_filters(options: dict) -> dict[str, str]:
    return {name: options[name] for name in SELECTION_FILTERS if options.get(name)}


def filter_problem(exc: InvalidInput) -> CommandError:
    problems = "; ".join(f"{option(name) if name != 'ids' else 'ids'} {text}" for name, text in exc.errors.items())
    return CommandError(f"invalid filter: {problems}", returncode=USAGE)


class Subcommands(BaseCommand):
    """A group of subcommands: `add_parsers` declares them, a handle_<name> method runs each."""

    @staticmethod
    def add_parsers(commands: Any) -> None:
        raise NotImplementedError

    def out(self, text: str = "") -> None:
        self.stdout.write(text)
